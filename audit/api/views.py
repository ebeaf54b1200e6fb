"""/api/v1/admin/audit: the audit trail, read-only, for administrators."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.serializers import AuditEventSerializer
from audit.filtersets import AuditEventFilterSet
from audit.models import AuditEvent
from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import ADMIN, HasDjangoPermission, HasScope
from mcpcontrol.api.schema import errors


class AuditEventViewSet(viewsets.GenericViewSet[AuditEvent]):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = PagePagination.of("logs", "flat")
    permission_classes = (IsAuthenticated, HasDjangoPermission, HasScope)
    read_scope = write_scope = ADMIN
    read_permission = "audit.view_auditevent"
    ordering_fields = ("timestamp",)

    def get_queryset(self) -> QuerySet[AuditEvent]:
        # The view_auditevent permission is the visibility rule here: the trail holds no
        # secret, and an auditor must see every user's events.
        return AuditEvent.objects.select_related("actor").order_by("-timestamp", "-id")

    @extend_schema(
        operation_id="admin_audit_list",
        responses={200: AuditEventSerializer(many=True), **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
