"""POST /api/v1/servers/{id}/oauth/discover, /oauth/start and /oauth/disconnect."""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mcpcontrol.lib.urlguard import BlockedUrl
from servers import services as server_services
from servers.models import Agent, McpServer
from tokens import services
from tokens.oauth import OAuthError, OAuthTransientError

# Codes that describe the server's state rather than a malformed request.
_CONFLICT_CODES = frozenset({"not_connected"})


class OAuthErrorSerializer(serializers.Serializer[None]):
    """The API's error body (mcpcontrol.api.errors); `error` is an RFC 6749 code or ours."""

    error = serializers.CharField()
    message = serializers.CharField()


class OAuthDiscoverSerializer(serializers.Serializer[None]):
    issuer = serializers.CharField()
    authorization_url = serializers.CharField()
    token_url = serializers.CharField()
    registration_url = serializers.CharField()
    revocation_url = serializers.CharField()
    scopes = serializers.CharField(help_text="Space-separated scopes that will be requested.")
    pkce_methods = serializers.ListField(child=serializers.CharField())


class OAuthStartSerializer(serializers.Serializer[None]):
    agent_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="The caller's agent; per_agent servers only."
    )


class OAuthStartResponseSerializer(serializers.Serializer[None]):
    authorization_url = serializers.URLField(help_text="Send the user's browser here.")


class OAuthDisconnectSerializer(OAuthStartSerializer):
    """The same body as start: which grant to drop."""


class OAuthDisconnectResponseSerializer(serializers.Serializer[None]):
    status = serializers.CharField(help_text='Always "disconnected".')
    revoked = serializers.BooleanField(
        help_text="False when the authorization server could not be told (RFC 7009); "
        "the grant is deleted here either way."
    )


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(OAuthErrorSerializer) for code in codes}


def _error(code: str, message: str, status_code: int) -> Response:
    return Response({"error": code, "message": message}, status=status_code)


def _oauth_error(exc: Exception) -> Response:
    if isinstance(exc, BlockedUrl):
        return _error("blocked_url", str(exc), status.HTTP_400_BAD_REQUEST)
    assert isinstance(exc, OAuthError)
    # The upstream being down is a gateway problem, not the caller's mistake.
    code: int = status.HTTP_502_BAD_GATEWAY if isinstance(exc, OAuthTransientError) else 400
    if exc.code in _CONFLICT_CODES:
        code = status.HTTP_409_CONFLICT
    return _error(exc.code, exc.message, code)


class _ServerOAuthView(APIView):
    def get_server(self, pk: int) -> McpServer:
        # Scoped by for_user, so another team's server is a 404, not a 403.
        server = McpServer.objects.for_user(self.request.user).filter(pk=pk).first()
        if server is None:
            raise Http404
        return server

    def may_change(self, server: McpServer) -> bool:
        # The same rule as PATCH /servers/{id}: admins, or the owner of a user-scoped server.
        return server_services.server_can_change(user=self.request.user, server=server)

    def grant_target(self, request: Request, pk: int) -> tuple[McpServer, Agent | None] | Response:
        """The server and the agent whose grant the body names (None: the shared grant), or
        the refusal.

        A shared grant acts for everyone, so it takes the right to change the server; a
        per_agent grant needs only a visible server and the caller's own agent.
        """
        server = self.get_server(pk)
        body = OAuthStartSerializer(data=request.data)
        if not body.is_valid():
            return _error("invalid_request", str(body.errors), 400)
        agent = None
        agent_id = body.validated_data.get("agent_id")
        if agent_id is not None:
            agent = Agent.objects.for_user(request.user).filter(pk=agent_id).first()
            if agent is None:
                return _error("not_found", "No such agent.", 404)
        elif not self.may_change(server):
            return _error(
                "permission_denied", "A shared grant needs the right to change the server.", 403
            )
        if server.auth_type != McpServer.AuthType.OAUTH:
            return _error("not_oauth", "This server does not use OAuth.", 400)
        return server, agent

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "detail" in response.data:
            code = getattr(response.data["detail"], "code", "error")
            response.data = {"error": str(code), "message": str(response.data["detail"])}
        return response


class OAuthDiscoverView(_ServerOAuthView):
    """Find the server's authorization server (RFC 9728, then RFC 8414 or OpenID discovery)
    and store its endpoints on the server."""

    @extend_schema(
        operation_id="servers_oauth_discover",
        request=None,
        responses={200: OAuthDiscoverSerializer, **_errors(400, 403, 404, 502)},
    )
    def post(self, request: Request, pk: int) -> Response:
        server = self.get_server(pk)
        if not self.may_change(server):  # discovery rewrites the server's OAuth settings
            return _error("permission_denied", "You may not change this server.", 403)
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


class OAuthStartView(_ServerOAuthView):
    """Return the authorization URL. Shared grants take the change permission (they act for
    everyone); a per_agent grant needs only a visible server and the caller's own agent."""

    @extend_schema(
        operation_id="servers_oauth_start",
        request=OAuthStartSerializer,
        responses={201: OAuthStartResponseSerializer, **_errors(400, 403, 404, 502)},
    )
    def post(self, request: Request, pk: int) -> Response:
        target = self.grant_target(request, pk)
        if isinstance(target, Response):
            return target
        server, agent = target
        try:
            url = services.oauth_authorization_start(server=server, user=request.user, agent=agent)
        except (OAuthError, BlockedUrl) as exc:
            return _oauth_error(exc)
        return Response({"authorization_url": url}, status=status.HTTP_201_CREATED)


class OAuthDisconnectView(_ServerOAuthView):
    """Drop a grant: revoke it upstream (RFC 7009), clear it, delete its Token rows, audit.
    Who may do it is decided as for start."""

    @extend_schema(
        operation_id="servers_oauth_disconnect",
        request=OAuthDisconnectSerializer,
        responses={200: OAuthDisconnectResponseSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        target = self.grant_target(request, pk)
        if isinstance(target, Response):
            return target
        server, agent = target
        try:
            revoked = services.oauth_disconnect(server=server, agent=agent, actor=request.user)
        except OAuthError as exc:
            return _oauth_error(exc)
        return Response({"status": "disconnected", "revoked": revoked})
