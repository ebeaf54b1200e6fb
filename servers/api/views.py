"""/api/v1/servers: the registry, with optimistic locking (version / If-Match + ETag)."""

import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcpcontrol.api.errors import PreconditionFailed, error_body
from mcpcontrol.api.pagination import paginate
from mcpcontrol.api.permissions import READ_SERVERS, WRITE_SERVERS, HasScope
from mcpcontrol.api.schema import PAGE_PARAMS, VERSION_CONFLICT, errors
from mcpcontrol.api.throttling import WritesThrottle
from servers import services
from servers.api.schema import (
    ServerCreatedSerializer,
    ServerListResponseSerializer,
    ServerRefreshedSerializer,
    ServerToggledSerializer,
    ServerToolsSerializer,
)
from servers.api.serializers import (
    McpServerListSerializer,
    McpServerSerializer,
    McpServerWriteSerializer,
)
from servers.filtersets import McpServerFilterSet
from servers.models import McpServer

ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def etag(server: McpServer) -> str:
    return f'W/"{server.version}"'


def server_summary(server: McpServer, *fields: str) -> dict[str, Any]:
    base = {"id": str(server.pk), "server_name": server.name, "path": server.path}
    return {**base, **{f: getattr(server, f) for f in fields}}


def register_from_request(request: Request, data: Any) -> McpServer:
    """Validate a create request, check who may create it, and register it."""
    serializer = McpServerWriteSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    fields = dict(serializer.validated_data)
    fields.pop("_version", None)
    fields = services.server_secret_maps_resolve(server=None, changes=fields)
    fields = services.server_authorize_create(user=request.user, fields=fields)
    return services.server_register(actor=request.user, **fields)


def created_response(server: McpServer) -> Response:
    body = server_summary(server, "scope", "status", "created_at", "updated_at", "version")
    return Response(body, status=status.HTTP_201_CREATED, headers={"ETag": etag(server)})


class McpServerViewSet(viewsets.GenericViewSet[McpServer]):
    serializer_class = McpServerSerializer
    filterset_class = McpServerFilterSet
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS
    ordering_fields = ("name", "created_at", "updated_at")
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[McpServer]:
        # Scoped here, so servers the caller may not see are 404, never 403.
        return McpServer.objects.for_user(self.request.user).order_by("name", "id")

    def get_changeable(self) -> McpServer:
        server = self.get_object()
        if not services.server_can_change(user=self.request.user, server=server):
            raise PermissionDenied("You may not change this server.")
        return server

    @extend_schema(
        operation_id="servers_list",
        parameters=PAGE_PARAMS,
        responses={200: ServerListResponseSerializer, **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        page = paginate(request, self.filter_queryset(self.get_queryset()))
        data = McpServerListSerializer(page.items, many=True).data
        return Response({"servers": data, "pagination": page.meta()})

    @extend_schema(responses={200: McpServerSerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        server = self.get_object()
        return Response(McpServerSerializer(server).data, headers={"ETag": etag(server)})

    @extend_schema(
        request=McpServerWriteSerializer,
        responses={201: ServerCreatedSerializer, **errors(400, 401, 403, 409, 429)},
    )
    def create(self, request: Request) -> Response:
        return created_response(register_from_request(request, request.data))

    @extend_schema(
        request=McpServerWriteSerializer,
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses={
            200: ServerCreatedSerializer,
            **errors(400, 401, 403, 404, 412, 429),
            409: VERSION_CONFLICT,
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        """Update with optimistic locking: `version` in the body (409) or If-Match (412)."""
        server = self.get_changeable()
        if_match = self._if_match(server)
        serializer = McpServerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = services.server_secret_maps_resolve(
            server=server, changes=dict(serializer.validated_data)
        )
        version = changes.pop("_version", None)
        if version is None and if_match is None:
            raise ValidationError({"version": ["Send the version you read, or If-Match."]})
        services.server_authorize_change(user=request.user, server=server, changes=changes)
        try:
            server = services.server_update(
                actor=request.user, server=server, changes=changes,
                expected_version=version if version is not None else if_match,
            )  # fmt: skip
        except services.VersionConflict as exc:
            if version is None:
                raise PreconditionFailed() from exc
            return Response(
                error_body(
                    "conflict", "Server was modified by another process",
                    current_version=exc.current_version, provided_version=exc.provided_version,
                ),
                status=status.HTTP_409_CONFLICT,
            )  # fmt: skip
        body = server_summary(server, "scope", "status", "created_at", "updated_at", "version")
        return Response(body, headers={"ETag": etag(server)})

    def _if_match(self, server: McpServer) -> int | None:
        """The version named by If-Match (412 when it is not the current one)."""
        raw = self.request.headers.get("If-Match")
        if raw is None:
            return None
        if raw.strip() == "*":
            return server.version
        match = ETAG_RE.match(raw)
        if match is None or int(match.group(1)) != server.version:
            raise PreconditionFailed()
        return server.version

    @extend_schema(responses={204: None, **errors(401, 403, 404, 429)})
    def destroy(self, request: Request, pk: str) -> Response:
        services.server_delete(actor=request.user, server=self.get_changeable())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=inline_serializer("Toggle", {"enabled": serializers.BooleanField()}),
        responses={200: ServerToggledSerializer, **errors(400, 401, 403, 404, 429)},
    )
    @action(detail=True, methods=["post"])
    def toggle(self, request: Request, pk: str) -> Response:
        server = self.get_changeable()
        enabled = request.data.get("enabled") if isinstance(request.data, dict) else None
        if not isinstance(enabled, bool):
            raise ValidationError({"enabled": ["enabled must be true or false."]})
        server = services.server_set_enabled(actor=request.user, server=server, enabled=enabled)
        body = server_summary(server, "status", "updated_at")
        return Response({**body, "enabled": server.is_enabled})

    @extend_schema(responses={200: ServerToolsSerializer, **errors(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def tools(self, request: Request, pk: str) -> Response:
        server = self.get_object()
        body = server_summary(server, "num_tools")
        return Response({**body, "tools": server.tools or [], "cached": True})

    @extend_schema(
        request=None,
        responses={200: ServerRefreshedSerializer, **errors(401, 403, 404, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str) -> Response:
        """One health check now, through the service the background worker uses."""
        server = self.get_changeable()
        result = services.server_check(server_id=server.pk)
        if result is None:  # another worker holds this server's check claim
            return Response(
                error_body("conflict", "A check of this server is already running; retry shortly."),
                status=status.HTTP_409_CONFLICT,
            )
        server.refresh_from_db()
        state = services.server_health_state(server=server)
        body = server_summary(server, "status", "num_tools")
        # The DB records checks only on events; the latest check time lives in the cache.
        body["last_checked"] = state.get("checked_at") or server.last_checked_at
        body["response_time_ms"] = result.response_time_ms
        body["outcome"] = result.outcome
        return Response(body)
