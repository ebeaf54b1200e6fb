from django.urls import path

from gateway.api.views import AgentKeyViewSet, AgentPolicyViewSet, GroupPolicyViewSet
from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)

AGENT = "agents/<id:agent_id>"
keys = AgentKeyViewSet.as_view({"get": "list", "post": "create"})
key = AgentKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"})
policy = AgentPolicyViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "put": "partial_update"}
)
group_policies = GroupPolicyViewSet.as_view({"get": "list", "post": "create"})
group_policy = GroupPolicyViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path(f"{AGENT}/keys", keys, name="agent-keys"),
    path(f"{AGENT}/keys/<id:pk>", key, name="agent-key"),
    path(f"{AGENT}/gateway-policy", policy, name="agent-gateway-policy"),
    path("gateway/group-policies", group_policies, name="gateway-group-policies"),
    path("gateway/group-policies/<id:pk>", group_policy, name="gateway-group-policy"),
]
