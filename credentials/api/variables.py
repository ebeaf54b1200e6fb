"""Values of a server's custom_user_vars: the caller's own (GET/PUT
/api/v1/servers/{id}/variables) or one of their agents' (GET/PUT
/api/v1/agents/{agent_id}/variables/{server_id}). Values are write-only: responses name the
variables that hold one, never a value."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from credentials import services
from mcpcontrol.api.permissions import READ_SERVERS, WRITE_SERVERS, HasScope
from mcpcontrol.api.schema import errors
from mcpcontrol.api.throttling import WritesThrottle
from servers.models import Agent, McpServer


def _values_field() -> serializers.DictField:
    """Variable name → value; null or "" removes the value."""
    value = serializers.CharField(
        max_length=10000, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    return serializers.DictField(child=value)


# The PUT body: an object of variable name → value (null or "" removes it).
VALUES_SCHEMA = {
    "application/json": {
        "type": "object",
        "additionalProperties": {"type": "string", "nullable": True},
    }
}


class VariablesSerializer(serializers.Serializer[Any]):
    server_id = serializers.CharField()
    declared = serializers.JSONField(help_text="The server's custom_user_vars.")
    set = serializers.ListField(child=serializers.CharField(), help_text="Names with a value.")


class _VariablesView(APIView):
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS

    def servers(self) -> QuerySet[McpServer]:
        return McpServer.objects.for_user(self.request.user)

    def body(self, server: McpServer, names: list[str]) -> dict[str, Any]:
        return {"server_id": str(server.pk), "declared": server.custom_user_vars or {},
                "set": names}  # fmt: skip

    def values(self, request: Request) -> dict[str, str | None]:
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Send an object of name → value."]})
        return dict(_values_field().run_validation(request.data))

    def store(self, server: McpServer, request: Request, **who: Any) -> Response:
        try:
            names = services.variables_set(
                server=server, values=self.values(request), actor=request.user, **who
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(self.body(server, names))


class UserVariablesView(_VariablesView):
    @extend_schema(operation_id="server_variables_get", responses={200: VariablesSerializer, **errors(401, 403, 404)})  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        server = get_object_or_404(self.servers(), pk=pk)
        return Response(
            self.body(server, services.variable_names(server=server, user=request.user))
        )

    @extend_schema(operation_id="server_variables_put", request=VALUES_SCHEMA, responses={200: VariablesSerializer, **errors(400, 401, 403, 404)})  # fmt: skip
    def put(self, request: Request, pk: int) -> Response:
        return self.store(get_object_or_404(self.servers(), pk=pk), request, user=request.user)


class AgentVariablesView(_VariablesView):
    def target(self, agent_id: int, server_id: int) -> tuple[Agent, McpServer]:
        agent = get_object_or_404(Agent.objects.for_user(self.request.user), pk=agent_id)
        # The agent uses what its owner may see.
        server = get_object_or_404(McpServer.objects.usable_by(agent.owner), pk=server_id)
        get_object_or_404(self.servers(), pk=server.pk)
        return agent, server

    @extend_schema(operation_id="agent_variables_get", responses={200: VariablesSerializer, **errors(401, 403, 404)})  # fmt: skip
    def get(self, request: Request, agent_id: int, server_id: int) -> Response:
        agent, server = self.target(agent_id, server_id)
        return Response(self.body(server, services.variable_names(server=server, agent=agent)))

    @extend_schema(operation_id="agent_variables_put", request=VALUES_SCHEMA, responses={200: VariablesSerializer, **errors(400, 401, 403, 404)})  # fmt: skip
    def put(self, request: Request, agent_id: int, server_id: int) -> Response:
        agent, server = self.target(agent_id, server_id)
        return self.store(server, request, agent=agent)
