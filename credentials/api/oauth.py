"""POST /api/v1/servers/{id}/oauth/discover, /oauth/start and /oauth/disconnect.

Errors go through the API's one handler: an authorization server's refusal keeps its
RFC 6749 code (invalid_grant, access_denied, ...), an unreachable one is a 502.
"""

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from credentials import services
from credentials.oauth import OAuthError, OAuthTransientError
from mcpcontrol.api.errors import ApiError, BadGateway, BadRequest, Conflict
from mcpcontrol.api.schema import errors
from mcpcontrol.lib.urlguard import BlockedUrl
from servers import services as server_services
from servers.models import Agent, McpServer

# Codes that describe the grant's state rather than a malformed request.
_CONFLICT_CODES = frozenset({"not_connected"})


class OAuthDiscoverSerializer(serializers.Serializer[None]):
    issuer = serializers.CharField()
    authorization_url = serializers.CharField()
    token_url = serializers.CharField()
    registration_endpoint = serializers.CharField()
    revocation_endpoint = serializers.CharField()
    scope = serializers.CharField(help_text="Space-separated scopes that will be requested.")
    code_challenge_methods_supported = serializers.ListField(child=serializers.CharField())


class OAuthStartSerializer(serializers.Serializer[None]):
    agent_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="The caller's agent; per_agent servers only.",
    )  # fmt: skip


class OAuthStartResponseSerializer(serializers.Serializer[None]):
    authorization_url = serializers.URLField(help_text="Send the user's browser here.")


class OAuthDisconnectResponseSerializer(serializers.Serializer[None]):
    status = serializers.CharField(help_text='Always "disconnected".')
    revoked = serializers.BooleanField(
        help_text="False when the authorization server could not be told (RFC 7009); "
        "the grant is deleted here either way."
    )


def api_error(exc: OAuthError | BlockedUrl) -> ApiError:
    """The API error for an OAuth failure: the upstream being down is not the caller's fault."""
    if isinstance(exc, BlockedUrl):
        return BadRequest(str(exc), code="blocked_url")
    if isinstance(exc, OAuthTransientError):
        return BadGateway(exc.message, code=exc.code)
    if exc.code in _CONFLICT_CODES:
        return Conflict(exc.message, code=exc.code)
    return BadRequest(exc.message, code=exc.code)


class _ServerOAuthView(APIView):
    def get_server(self, pk: int) -> McpServer:
        # Scoped by for_user, so another team's server is a 404, not a 403.
        server = McpServer.objects.for_user(self.request.user).filter(pk=pk).first()
        if server is None:
            raise Http404
        return server

    def may_change(self, server: McpServer) -> bool:
        # The same rule as PATCH /servers/{id}.
        return server_services.server_can_change(user=self.request.user, server=server)

    def grant_target(self, request: Request, pk: int) -> tuple[McpServer, Agent | None]:
        """The server and the agent whose grant the body names (None: the shared grant).

        A shared grant acts for everyone, so it takes the right to change the server; a
        per_agent grant needs only a visible server and the caller's own agent.
        """
        server = self.get_server(pk)
        body = OAuthStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent, agent_id = None, body.validated_data.get("agent_id")
        if agent_id is not None:
            agent = Agent.objects.for_user(request.user).filter(pk=agent_id).first()
            if agent is None:
                raise NotFound("No such agent.")
        elif not self.may_change(server):
            raise PermissionDenied("A shared grant needs the right to change the server.")
        if server.auth_type != McpServer.AuthType.OAUTH:
            raise BadRequest("This server does not use OAuth.", code="not_oauth")
        return server, agent


class OAuthDiscoverView(_ServerOAuthView):
    """Find the server's authorization server (RFC 9728, then RFC 8414 or OpenID discovery)
    and store its endpoints on the server."""

    @extend_schema(
        operation_id="servers_oauth_discover",
        request=None,
        responses={200: OAuthDiscoverSerializer, **errors(400, 403, 404, 502)},
    )
    def post(self, request: Request, pk: int) -> Response:
        server = self.get_server(pk)
        if not self.may_change(server):  # discovery rewrites the server's OAuth settings
            raise PermissionDenied("You may not change this server.")
        if server.auth_type != McpServer.AuthType.OAUTH or not server.is_remote:
            raise BadRequest(
                "Discovery needs a remote server with auth_type oauth.", code="not_oauth"
            )
        try:
            server = services.oauth_discover(server=server, actor=request.user)
        except (OAuthError, BlockedUrl) as exc:
            raise api_error(exc) from exc
        config = server.oauth_config
        body: dict[str, Any] = {
            key: getattr(config, key)
            for key in (
                "issuer",
                "authorization_url",
                "token_url",
                "registration_endpoint",
                "revocation_endpoint",
                "scope",
            )
        }
        body["code_challenge_methods_supported"] = list(config.code_challenge_methods_supported)
        return Response(body)


class OAuthStartView(_ServerOAuthView):
    """Return the authorization URL. Shared grants take the change permission (they act for
    everyone); a per_agent grant needs only a visible server and the caller's own agent."""

    @extend_schema(
        operation_id="servers_oauth_start",
        request=OAuthStartSerializer,
        responses={201: OAuthStartResponseSerializer, **errors(400, 403, 404, 502)},
    )
    def post(self, request: Request, pk: int) -> Response:
        server, agent = self.grant_target(request, pk)
        try:
            url = services.oauth_authorization_start(server=server, user=request.user, agent=agent)
        except (OAuthError, BlockedUrl) as exc:
            raise api_error(exc) from exc
        return Response({"authorization_url": url}, status=status.HTTP_201_CREATED)


class OAuthDisconnectView(_ServerOAuthView):
    """Drop a grant: revoke it upstream (RFC 7009), delete it, audit. Who may do it is
    decided as for start."""

    @extend_schema(
        operation_id="servers_oauth_disconnect",
        request=OAuthStartSerializer,
        responses={200: OAuthDisconnectResponseSerializer, **errors(400, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        server, agent = self.grant_target(request, pk)
        try:
            revoked = services.oauth_disconnect(server=server, agent=agent, actor=request.user)
        except OAuthError as exc:
            raise api_error(exc) from exc
        return Response({"status": "disconnected", "revoked": revoked})
