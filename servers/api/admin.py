"""/api/v1/admin/servers: the fleet as administrators see it (admin role and scope only)."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcpcontrol.api.pagination import paginate
from mcpcontrol.api.permissions import ADMIN, HasScope, IsAdminRole
from mcpcontrol.api.schema import PAGE_PARAMS, errors
from mcpcontrol.api.throttling import WritesThrottle
from servers import services
from servers.api.schema import (
    AdminHealthSerializer,
    AdminServerListSerializer,
    AdminStatsSerializer,
    ServerCreatedSerializer,
)
from servers.api.serializers import McpServerListSerializer, McpServerWriteSerializer
from servers.api.views import created_response, register_from_request
from servers.filtersets import AdminMcpServerFilterSet
from servers.models import McpServer
from tokens import services as token_services

HEALTH_FIELDS = (
    "id", "path", "name", "status", "last_checked_at", "response_time_ms",
    "last_connected_at", "error_message", "is_enabled",
)  # fmt: skip


class AdminMcpServerViewSet(viewsets.GenericViewSet[McpServer]):
    serializer_class = McpServerListSerializer
    filterset_class = AdminMcpServerFilterSet
    permission_classes = (IsAuthenticated, IsAdminRole, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope = write_scope = ADMIN
    ordering_fields = ("name", "created_at", "updated_at")

    def get_queryset(self) -> QuerySet[McpServer]:
        return McpServer.objects.for_user(self.request.user).order_by("name", "id")

    @extend_schema(
        operation_id="admin_servers_list",
        parameters=PAGE_PARAMS,
        responses={200: AdminServerListSerializer, **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        page = paginate(request, self.filter_queryset(self.get_queryset()))
        data = McpServerListSerializer(page.items, many=True).data
        return Response({"servers": data, **{k: v for k, v in page.meta().items()}})

    @extend_schema(
        request=McpServerWriteSerializer,
        responses={201: ServerCreatedSerializer, **errors(400, 401, 403, 409, 429)},
    )
    def create(self, request: Request) -> Response:
        """Create a server for anyone: app-wide by default, or for a user or a group."""
        return created_response(register_from_request(request, request.data))

    @extend_schema(responses={200: AdminStatsSerializer, **errors(401, 403)})
    @action(detail=False, methods=["get"])
    def stats(self, request: Request) -> Response:
        from django.contrib.auth import get_user_model

        active_users = get_user_model().objects.filter(is_active=True).count()
        return Response({
            **services.server_stats(), **token_services.token_stats(), "active_users": active_users,
        })  # fmt: skip

    @extend_schema(responses={200: AdminHealthSerializer, **errors(401, 403)})
    @action(detail=False, methods=["get"])
    def health(self, request: Request) -> Response:
        rows = self.get_queryset().values(*HEALTH_FIELDS)
        items = [
            {
                "id": str(row["id"]), "path": row["path"], "server_name": row["name"],
                "status": row["status"] if row["is_enabled"] else "disabled",
                "last_checked": row["last_checked_at"], "response_time_ms": row["response_time_ms"],
                "last_connected": row["last_connected_at"], "error": row["error_message"] or None,
            }
            for row in rows
        ]  # fmt: skip
        return Response({"services": items, "summary": services.server_health_summary()})
