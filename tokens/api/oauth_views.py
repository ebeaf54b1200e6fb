"""POST /api/v1/servers/{id}/oauth/discover and /oauth/start."""

from django.http import Http404
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mcpcontrol.lib.urlguard import BlockedUrl
from servers.models import Agent, McpServer
from tokens import services
from tokens.oauth import OAuthError, OAuthTransientError


def _error(code: str, message: str, status_code: int) -> Response:
    return Response({"error": code, "message": message}, status=status_code)


def _oauth_error(exc: Exception) -> Response:
    if isinstance(exc, BlockedUrl):
        return _error("blocked_url", str(exc), status.HTTP_400_BAD_REQUEST)
    assert isinstance(exc, OAuthError)
    # The upstream being down is a gateway problem, not the caller's mistake.
    code = status.HTTP_502_BAD_GATEWAY if isinstance(exc, OAuthTransientError) else 400
    return _error(exc.code, exc.message, code)


class CanChangeServer(BasePermission):
    """Discovery rewrites the server's OAuth settings: it takes the change permission."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm("servers.change_mcpserver"))


class _ServerOAuthView(APIView):
    def get_server(self, pk: int) -> McpServer:
        # Scoped by for_user, so another team's server is a 404, not a 403.
        server = McpServer.objects.for_user(self.request.user).filter(pk=pk).first()
        if server is None:
            raise Http404
        return server

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "detail" in response.data:
            code = getattr(response.data["detail"], "code", "error")
            response.data = {"error": str(code), "message": str(response.data["detail"])}
        return response


class OAuthDiscoverView(_ServerOAuthView):
    permission_classes = (IsAuthenticated, CanChangeServer)

    def post(self, request: Request, pk: int) -> Response:
        server = self.get_server(pk)
        if server.auth_type != McpServer.AuthType.OAUTH or not server.is_remote:
            return _error("not_oauth", "Discovery needs a remote server with auth_type oauth.", 400)
        try:
            services.oauth_discover(server=server, actor=request.user)
        except (OAuthError, BlockedUrl) as exc:
            return _oauth_error(exc)
        return Response(
            {
                "issuer": server.oauth_issuer,
                "authorization_url": server.oauth_authorization_url,
                "token_url": server.oauth_token_url,
                "registration_url": server.oauth_registration_url,
                "revocation_url": server.oauth_revocation_url,
                "scopes": server.oauth_scopes,
                "pkce_methods": server.oauth_pkce_methods,
            }
        )


class OAuthStartSerializer(serializers.Serializer[None]):
    agent_id = serializers.IntegerField(required=False, allow_null=True)


class OAuthStartView(_ServerOAuthView):
    """Return the authorization URL. Shared grants take the change permission (they act for
    everyone); a per_agent grant needs only a visible server and the caller's own agent."""

    def post(self, request: Request, pk: int) -> Response:
        server = self.get_server(pk)
        body = OAuthStartSerializer(data=request.data)
        if not body.is_valid():
            return _error("invalid_request", str(body.errors), 400)
        agent = None
        if body.validated_data.get("agent_id") is not None:
            agent = (
                Agent.objects.for_user(request.user)
                .filter(pk=body.validated_data["agent_id"])
                .first()
            )
            if agent is None:
                return _error("not_found", "No such agent.", 404)
        elif not request.user.has_perm("servers.change_mcpserver"):
            return _error(
                "permission_denied", "Connecting a shared grant needs change permission.", 403
            )
        if server.auth_type != McpServer.AuthType.OAUTH:
            return _error("not_oauth", "This server does not use OAuth.", 400)
        try:
            url = services.oauth_authorization_start(server=server, user=request.user, agent=agent)
        except (OAuthError, BlockedUrl) as exc:
            return _oauth_error(exc)
        return Response({"authorization_url": url}, status=status.HTTP_201_CREATED)
