"""GET /api/v1/admin/servers/stats: seed 004's fleet statistics, across apps.

Here, at the project level, because it counts what two apps own (servers and the token
vault) and neither app may import the other for it.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mcpcontrol.api.permissions import ADMIN, HasDjangoPermission, HasScope
from mcpcontrol.api.schema import errors
from servers import services as server_services
from servers.api.schema import AdminStatsSerializer
from tokens import services as token_services


class AdminStatsView(APIView):
    permission_classes = (IsAuthenticated, HasDjangoPermission, HasScope)
    read_scope = write_scope = ADMIN
    read_permission = "servers.view_mcpserver"

    @extend_schema(operation_id="admin_servers_stats", responses={200: AdminStatsSerializer, **errors(401, 403)})  # fmt: skip
    def get(self, request: Request) -> Response:
        active_users = get_user_model().objects.filter(is_active=True).count()
        return Response({
            **server_services.server_stats(), **token_services.token_stats(),
            "active_users": active_users,
        })  # fmt: skip
