"""/api/v1/admin/servers: the fleet as administrators see it (admin role and scope only)."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import ADMIN, HasDjangoPermission, HasScope
from mcpcontrol.api.schema import errors
from mcpcontrol.api.throttling import WritesThrottle
from servers import document, services
from servers.api.schema import (
    AdminHealthSerializer,
    AdminServerListItemSerializer,
    ServerDetailSerializer,
)
from servers.api.views import create_from_request
from servers.document.shapes import ServerShape
from servers.filtersets import AdminMcpServerFilterSet
from servers.models import McpServer

HEALTH_FIELDS = (
    "id", "path", "name", "status", "is_enabled", "last_checked_at", "response_time_ms",
    "last_connected_at", "error_message", "last_error_at",
)  # fmt: skip


class AdminMcpServerViewSet(viewsets.GenericViewSet[McpServer]):
    filterset_class = AdminMcpServerFilterSet
    serializer_class = ServerShape  # the request document (OPTIONS describes it)
    pagination_class = PagePagination.of("servers", "flat")
    permission_classes = (IsAuthenticated, HasDjangoPermission, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope = write_scope = ADMIN
    read_permission, write_permission = "servers.view_mcpserver", "servers.add_mcpserver"
    ordering_fields = ("name", "created_at", "updated_at")

    def get_queryset(self) -> QuerySet[McpServer]:
        return McpServer.objects.for_user(self.request.user).order_by("name", "id")

    @extend_schema(
        operation_id="admin_servers_list",
        responses={200: AdminServerListItemSerializer(many=True), **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([document.list_item(s) for s in page or []])

    @extend_schema(
        request=ServerShape,
        responses={201: ServerDetailSerializer, **errors(400, 401, 403, 409, 429)},
    )
    def create(self, request: Request) -> Response:
        """Create a server for anyone: app-wide by default, or for a user or a group."""
        return create_from_request(request)

    @extend_schema(responses={200: AdminHealthSerializer, **errors(401, 403)})
    @action(detail=False, methods=["get"])
    def health(self, request: Request) -> Response:
        """Seed 004's health list: healthy, unhealthy or disabled per server."""
        rows = self.filter_queryset(self.get_queryset()).values(*HEALTH_FIELDS)
        items = [
            {
                "id": str(row["id"]), "path": row["path"], "server_name": row["name"],
                "status": _health_status(row), "last_checked": row["last_checked_at"],
                "response_time_ms": row["response_time_ms"],
                "last_connected": row["last_connected_at"], "error": row["error_message"] or None,
                "last_error": row["last_error_at"],
            }
            for row in rows
        ]  # fmt: skip
        return Response({"services": items, "summary": services.server_health_summary()})


def _health_status(row: dict[str, object]) -> str:
    if not row["is_enabled"]:
        return "disabled"
    return "healthy" if row["status"] == McpServer.Status.ACTIVE else "unhealthy"
