"""/api/v1/servers: the registry, in seed 004's shapes, with optimistic locking.

Bodies are read and written by servers.document (the one codec of a server document);
errors go through the API's one handler; locking is the service's, If-Match the mixin's.
"""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcpcontrol.api.errors import Conflict, PreconditionFailed
from mcpcontrol.api.ifmatch import IfMatchMixin, etag
from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import READ_SERVERS, WRITE_SERVERS, HasScope
from mcpcontrol.api.schema import VERSION_CONFLICT, errors
from mcpcontrol.api.throttling import WritesThrottle
from mcpcontrol.lib.ids import ID_PATTERN
from servers import document, services
from servers.api.schema import (
    CheckHistoryPageSerializer,
    ServerDetailSerializer,
    ServerListItemSerializer,
    ServerRefreshedSerializer,
    ServerToggledSerializer,
    ServerToolsSerializer,
)
from servers.credential_port import credentials
from servers.document.shapes import ServerShape
from servers.filtersets import McpServerFilterSet
from servers.models import CheckResult, McpServer
from servers.tasks import health_check_server as health_check_server_task

HISTORY_PAGINATION = PagePagination.of("checks", "nested", per_page=50)
# Seed 004's health vocabulary for a refresh: our outcomes, the failures as "unhealthy".
REFRESH_STATUS = {"healthy": "healthy", "auth_required": "auth_required", "disabled": "disabled"}


def server_detail(server: McpServer) -> dict[str, Any]:
    """The detail document, with the credential's state and the latest health outcome."""
    return document.detail(
        server,
        credential=credentials().state(server=server),
        health=services.server_health_state(server=server),
    )


def authorizer(user: Any) -> services.documents.Authorize:
    """Who may write what: the access rules of servers.services.access, for this user."""

    def authorize(server: McpServer | None, fields: dict[str, Any]) -> dict[str, Any]:
        if server is None:
            return services.server_authorize_create(user=user, fields=fields)
        services.server_authorize_change(user=user, server=server, changes=fields)
        return fields

    return authorize


def create_from_request(request: Request) -> Response:
    """Validate, authorize and register the document in the body; 201 with the detail."""
    try:
        server = services.server_create_from_document(
            actor=request.user, body=request.data, authorize=authorizer(request.user)
        )
    except document.DocumentError as exc:
        raise ValidationError(exc.errors) from None
    return Response(server_detail(server), status.HTTP_201_CREATED, headers={"ETag": etag(server)})


class McpServerViewSet(IfMatchMixin, viewsets.GenericViewSet[McpServer]):
    filterset_class = McpServerFilterSet
    serializer_class = ServerShape  # the request document (OPTIONS describes it)
    pagination_class = PagePagination.of("servers", "nested")
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS
    ordering_fields = ("name", "created_at", "updated_at")
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[McpServer]:
        # Scoped here, so servers the caller may not see are 404, never 403.
        return McpServer.objects.for_user(self.request.user).order_by("name", "id")

    def get_changeable(self, *, delete: bool = False) -> McpServer:
        """The server, if the caller may change (or delete) it: 403 otherwise."""
        server = self.get_object()
        allowed = services.server_can_delete if delete else services.server_can_change
        if not allowed(user=self.request.user, server=server):
            raise PermissionDenied(f"You may not {'delete' if delete else 'change'} this server.")
        return server

    @extend_schema(operation_id="servers_list", responses={200: ServerListItemSerializer(many=True), **errors(400, 401, 403)})  # fmt: skip
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([document.list_item(s) for s in page or []])

    @extend_schema(responses={200: ServerDetailSerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        server = self.get_object()
        return Response(server_detail(server), headers={"ETag": etag(server)})

    @extend_schema(
        request=ServerShape,
        responses={201: ServerDetailSerializer, **errors(400, 401, 403, 409, 429)},
    )
    def create(self, request: Request) -> Response:
        return create_from_request(request)

    @extend_schema(
        request=ServerShape,
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses={
            200: ServerDetailSerializer,
            **errors(400, 401, 403, 404, 412, 429),
            409: VERSION_CONFLICT,
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        """Update with optimistic locking: `version` in the body (409) or If-Match (412). A
        body that changes nothing (a GET body sent back) writes nothing."""
        server = self.get_changeable()
        if_match = self.if_match_version(server)
        try:
            server = services.server_update_from_document(
                actor=request.user, server=server, body=request.data, expected_version=if_match,
                authorize=authorizer(request.user), require_version=True,
            )  # fmt: skip
        except document.DocumentError as exc:
            raise ValidationError(exc.errors) from None
        except services.VersionConflict as exc:
            if isinstance(request.data, dict) and "version" in request.data:
                raise Conflict(
                    "Server was modified by another process",
                    current_version=exc.current_version, provided_version=exc.provided_version,
                ) from exc  # fmt: skip
            raise PreconditionFailed() from exc
        return Response(server_detail(server), headers={"ETag": etag(server)})

    @extend_schema(responses={204: None, **errors(401, 403, 404, 429)})
    def destroy(self, request: Request, pk: str) -> Response:
        services.server_delete(actor=request.user, server=self.get_changeable(delete=True))
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
        return Response({
            "id": str(server.pk), "server_name": server.name, "path": server.path,
            "enabled": server.is_enabled, "status": server.status, "updated_at": server.updated_at,
        })  # fmt: skip

    @extend_schema(responses={200: ServerToolsSerializer, **errors(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def tools(self, request: Request, pk: str) -> Response:
        """The stored tool list (what the last check found): never a live call, so cached."""
        server = self.get_object()
        return Response({
            "id": str(server.pk), "server_name": server.name, "path": server.path,
            "tools": server.tools or [], "num_tools": server.num_tools, "cached": True,
            "tools_last_synced_at": server.tools_last_synced_at,
        })  # fmt: skip

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601; only "
                             "checks at or after it"),
            OpenApiParameter("page", int, description="Page number, 1 or more (default 1)."),
            OpenApiParameter("per_page", int, description="Items per page, 1..100 (default 50)."),
        ],
        responses={200: CheckHistoryPageSerializer, **errors(400, 401, 403, 404)},
    )  # fmt: skip
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """The server's recorded checks, newest first (MCPCONTROL_CHECK_HISTORY_DAYS kept)."""
        server = self.get_object()
        checks = server.check_results.order_by("-checked_at", "-id")
        if since := request.query_params.get("since"):
            checks = checks.since(_since(since))
        paginator = HISTORY_PAGINATION()
        page = paginator.paginate_queryset(checks, request, view=self)
        return paginator.get_paginated_response([check_history_item(c) for c in page])

    @extend_schema(
        request=None,
        responses={
            200: ServerRefreshedSerializer,
            202: ServerRefreshedSerializer,
            **errors(401, 403, 404, 409, 429),
        },
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str) -> Response:
        """One health check now, run by a worker: the request waits for it at most
        MCPCONTROL_REFRESH_WAIT_SECONDS (200 with the result), else answers 202 with the task
        id; a web worker is never held for a hanging server's whole timeout."""
        server = self.get_changeable()
        task = health_check_server_task.delay(server.pk)
        report = services.health_check_report(
            report_as=task.id, wait=settings.MCPCONTROL_REFRESH_WAIT_SECONDS
        )
        if report is not None and report.get("claimed") is False:
            raise Conflict("A check of this server is already running; retry shortly.")
        server.refresh_from_db()
        body = _refresh_body(server, report, task.id)
        return Response(body, status=status.HTTP_200_OK if report else status.HTTP_202_ACCEPTED)


def _since(raw: str) -> datetime:
    try:
        when = parse_datetime(raw) if len(raw) <= 40 else None
    except ValueError:  # well formed, but not a date (month 13)
        when = None
    if when is None:
        raise ValidationError({"since": ["since must be an ISO 8601 date and time."]})
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def check_history_item(check: CheckResult) -> dict[str, Any]:
    return {
        "checked_at": check.checked_at, "outcome": check.outcome,
        "duration_ms": check.duration_ms, "tool_count": check.tool_count,
        "error_class": check.error_class,
    }  # fmt: skip


def _refresh_body(server: McpServer, report: dict[str, Any] | None, task_id: str) -> dict[str, Any]:
    state = services.server_health_state(server=server)
    outcome = report["outcome"] if report else "pending"
    return {
        "id": str(server.pk), "server_name": server.name, "path": server.path,
        "status": REFRESH_STATUS.get(outcome, "pending" if not report else "unhealthy"),
        "outcome": outcome, "message": report.get("message", "") if report else "",
        # The DB records checks only on events; the latest check time lives in the cache.
        "last_checked": state.get("checked_at") if report else server.last_checked_at,
        "response_time_ms": report.get("response_time_ms") if report else None,
        "num_tools": server.num_tools, "task_id": task_id,
    }  # fmt: skip
