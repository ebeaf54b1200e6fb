"""Fixtures for the OAuth tests: real peers on 127.0.0.1, servers, users, and the helpers
that act as the user agent (follow the authorization redirect) and as an MCP client."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from credentials import services
from credentials.models import Grant
from servers.models import McpServer
from tests.peers.oauth_server import OAuthPeers, PeerOptions, run_oauth_peers


@pytest.fixture
def peers(request: pytest.FixtureRequest) -> Iterator[OAuthPeers]:
    """The peers; a test picks other metadata layouts with
    @pytest.mark.parametrize("peers", [PeerOptions(...)], indirect=True)."""
    with run_oauth_peers(getattr(request, "param", PeerOptions())) as running:
        yield running


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def operator(db: Any) -> User:
    """A non-staff user who may change servers (DjangoModelPermissions via a Group in prod)."""
    user = User.objects.create_user("operator", "op@example.com", "pw-operator-123")
    user.user_permissions.add(Permission.objects.get(codename="change_mcpserver"))
    return User.objects.get(pk=user.pk)  # fresh instance: no stale permission cache


@pytest.fixture
def oauth_server(db: Any, peers: OAuthPeers) -> McpServer:
    return McpServer.objects.create(
        name="Protected",
        path="/protected",
        url=peers.mcp_url,
        auth_type=McpServer.AuthType.OAUTH,
    )


def follow_authorization(authorization_url: str) -> str:
    """Act as the browser at the authorization server: return the callback URL's path+query."""
    response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    assert response.status_code in (302, 303, 307), response.text
    location = urlsplit(response.headers["location"])
    return f"{location.path}?{location.query}"


def connect(*, server: McpServer, user: User, agent: Any = None) -> Any:
    """The whole user-facing flow: start, consent at the AS, land on the callback."""
    url = services.oauth_authorization_start(server=server, user=user, agent=agent)
    client = Client()
    client.force_login(user)
    return client.get(follow_authorization(url), HTTP_ACCEPT="application/json")


def shared_grant(server: McpServer) -> Grant | None:
    """The server's shared grant as stored now (None when there is none)."""
    return Grant.objects.filter(server_id=server.pk, agent__isnull=True).first()


def credential_headers(*, server: McpServer, agent: Any = None) -> dict[str, str]:
    """The headers mcpcontrol sends upstream for this server (after the refresh pre-step);
    raises Unusable with the reason when it cannot be reached."""
    from credentials.services.resolve import Unusable

    services.grants_refresh_for(needs=[(server, agent)], budget=15)
    resolved = services.resolve(needs=[(server, agent)])[server.pk]
    if resolved.missing:
        raise Unusable(resolved.missing)
    return resolved.headers


def list_tool_names(url: str, headers: dict[str, str]) -> list[str]:
    """An MCP session (the SDK client) against the protected server; names of its tools."""

    async def run() -> list[str]:
        async with (
            create_mcp_http_client(headers=headers) as http_client,
            streamable_http_client(url, http_client=http_client) as (read, write),
            ClientSession(read, write) as session,
        ):
            with anyio.fail_after(15):
                await session.initialize()
                result = await session.list_tools()
        return [tool.name for tool in result.tools]

    return anyio.run(run)
