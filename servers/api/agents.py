"""/api/v1/agents: agents, their per-server credentials, client config and tool names."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcpcontrol.api.errors import BadRequest
from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import READ_SERVERS, WRITE_SERVERS, HasScope
from mcpcontrol.api.schema import errors
from mcpcontrol.api.throttling import WritesThrottle
from mcpcontrol.lib.ids import ID_PATTERN
from servers import services
from servers.api.schema import (
    AgentConnectionSerializer,
    AgentToolsSerializer,
    McpConfigSerializer,
)
from servers.api.serializers import AgentConnectionWriteSerializer, AgentSerializer
from servers.credential_port import credentials
from servers.models import Agent, AgentConnection, McpServer


@extend_schema_view(
    retrieve=extend_schema(responses={200: AgentSerializer, **errors(401, 403, 404)})
)
class AgentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[Agent]):
    serializer_class = AgentSerializer
    pagination_class = PagePagination.of("agents", "nested")
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS
    ordering_fields = ("name", "created_at")
    lookup_value_regex = ID_PATTERN
    filter_backends = ()

    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.for_user(self.request.user).order_by("name", "id")

    def _owner(self, serializer: AgentSerializer) -> Any:
        owner_id = serializer.validated_data.get("owner_id")
        if owner_id is None or owner_id == self.request.user.pk:
            return self.request.user
        if not self.request.user.has_perm("servers.add_agent"):
            raise PermissionDenied("Agents for other users need the add_agent permission.")
        owner = get_user_model().objects.filter(pk=owner_id).first()
        if owner is None:
            raise ValidationError({"user_id": ["No such user."]})
        return owner

    @extend_schema(
        operation_id="agents_list",
        responses={200: AgentSerializer(many=True), **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AgentSerializer(page, many=True).data)

    @extend_schema(
        request=AgentSerializer, responses={201: AgentSerializer, **errors(400, 401, 403, 429)}
    )
    def create(self, request: Request) -> Response:
        serializer = AgentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = services.agent_create(
            actor=request.user, owner=self._owner(serializer),
            name=serializer.validated_data["name"],
            description=serializer.validated_data.get("description", ""),
            config_mode=serializer.validated_data.get("config_mode", Agent.ConfigMode.GATEWAY),
        )  # fmt: skip
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AgentSerializer,
        responses={200: AgentSerializer, **errors(400, 401, 403, 404, 429)},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        agent = self.get_object()
        serializer = AgentSerializer(agent, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {
            k: v
            for k, v in serializer.validated_data.items()
            if k in ("name", "description", "config_mode")
        }
        agent = services.agent_update(actor=request.user, agent=agent, changes=changes)
        return Response(AgentSerializer(agent).data)

    @extend_schema(
        request=AgentSerializer,
        responses={200: AgentSerializer, **errors(400, 401, 403, 404, 429)},
    )
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None, **errors(401, 403, 404, 429)})
    def destroy(self, request: Request, pk: str) -> Response:
        services.agent_delete(actor=request.user, agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _server_for(self, agent: Agent, server_id: str) -> McpServer:
        """A server both the caller and the agent's owner may see (404 otherwise)."""
        visible = McpServer.objects.for_user(self.request.user).filter(
            pk__in=McpServer.objects.usable_by(agent.owner).values("pk")
        )
        return get_object_or_404(visible, pk=server_id)

    @extend_schema(
        methods=["PUT"], request=AgentConnectionWriteSerializer,
        responses={200: AgentConnectionSerializer, **errors(400, 401, 403, 404, 429)},
    )  # fmt: skip
    @extend_schema(methods=["DELETE"], responses={204: None, **errors(401, 403, 404, 429)})
    @action(
        detail=True, methods=["put", "delete"],
        url_path=rf"connections/(?P<server_id>{ID_PATTERN})", url_name="connection",
    )  # fmt: skip
    def connection(self, request: Request, pk: str, server_id: str) -> Response:
        agent = self.get_object()
        server = self._server_for(agent, server_id)
        if request.method == "DELETE":
            connection = get_object_or_404(AgentConnection, agent=agent, server=server)
            services.connection_delete(actor=request.user, connection=connection)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = AgentConnectionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection = services.connection_set(
            actor=request.user, agent=agent, server=server, **serializer.validated_data
        )
        state = credentials().state(server=server, agent=agent)
        return Response({
            "agent_id": str(agent.pk), "server_id": str(server.pk),
            "has_access_token": state.has_secret, "has_refresh_token": state.has_refresh,
            "expires_at": state.expires_at, "updated_at": connection.updated_at,
        })  # fmt: skip

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "client", str, enum=[*services.CLIENTS],
                description="Render the file this client documents (see docs/api.md); the "
                "answer is then {client, file_name, syntax, source, config, content, "
                "unsupported, missing_credentials}.",
            ),
            OpenApiParameter(
                "mode", enum=["direct", "gateway"], required=False,
                description="direct: one entry per upstream with its credentials; "
                "gateway: one entry, the agent's gateway endpoint. Default: the agent's "
                "config_mode (gateway for agents created since the gateway).",
            ),
            OpenApiParameter(
                "X-Agent-Key", location=OpenApiParameter.HEADER, required=False,
                description="gateway mode: an agent key to put in the entry.",
            ),
        ],
        responses={200: McpConfigSerializer, **errors(400, 401, 403, 404)},
    )  # fmt: skip
    @action(detail=True, methods=["get"], url_path="mcp-config")
    def mcp_config(self, request: Request, pk: str) -> Response:
        """The agent's client config. Direct mode reveals secrets: audited, never cached.

        Another user's agent (a superuser sees every agent) answers only to an explicit
        `?as_admin=1`: an administrator reads private credentials on purpose, on the record.
        Gateway mode reveals no upstream secret (docs/gateway.md).
        """
        agent = self.get_object()
        mode = request.query_params.get("mode", agent.config_mode)
        if mode not in ("direct", "gateway"):
            raise ValidationError({"mode": ["mode must be direct or gateway."]})
        client = request.query_params.get("client")
        if client is not None and client not in services.CLIENTS:
            raise BadRequest(
                f"Unknown client {client!r}: use one of {', '.join(services.CLIENTS)}.",
                code="unknown_client",
            )
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if mode == "gateway":
            key = request.headers.get("X-Agent-Key", "")
            config = services.mcp_config_gateway(agent=agent, key=key)
        else:
            if agent.owner_id != request.user.pk and request.query_params.get("as_admin") != "1":
                raise PermissionDenied(
                    "This agent belongs to another user: add ?as_admin=1 to read its "
                    "credentials as an administrator (audited)."
                )
            config = services.mcp_config_build(actor=request.user, agent=agent)
        if client is not None:
            config = services.client_config_render(
                config=config, client=client, bridge=settings.MCPCONTROL_CONFIG_BRIDGE_REMOTE
            )
        return Response(config, headers=no_store)

    @extend_schema(responses={200: AgentToolsSerializer, **errors(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def tools(self, request: Request, pk: str) -> Response:
        agent = self.get_object()
        servers = services.agent_servers(agent)
        return Response({"agent_id": str(agent.pk), **services.tool_names(servers)})
