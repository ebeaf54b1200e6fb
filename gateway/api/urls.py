from django.urls import path

from gateway.api.views import AgentKeyViewSet, AgentPolicyViewSet
from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)

AGENT = "agents/<id:agent_id>"
keys = AgentKeyViewSet.as_view({"get": "list", "post": "create"})
key = AgentKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"})
policy = AgentPolicyViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "put": "partial_update"}
)

urlpatterns = [
    path(f"{AGENT}/keys", keys, name="agent-keys"),
    path(f"{AGENT}/keys/<id:pk>", key, name="agent-key"),
    path(f"{AGENT}/gateway-policy", policy, name="agent-gateway-policy"),
]
