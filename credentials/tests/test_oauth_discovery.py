"""Discovery's fallbacks, each against peers that publish only that one form of metadata.

RFC 9728 3.1 (protected resource metadata at the path-suffixed, then the root well-known URL),
RFC 8414 3.1 (the well-known segment goes before the issuer's path) and OpenID Connect
Discovery (openid-configuration when there is no RFC 8414 document).
"""

from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from credentials import services
from credentials.oauth.errors import OAuthError
from credentials.tests.conftest import connect, credential_headers, list_tool_names
from servers.models import McpServer
from tests.peers.oauth_server import OAuthPeers, PeerOptions


def _peers(**options: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("peers", [PeerOptions(**options)], indirect=True)


def _rs_origin(peers: OAuthPeers) -> str:
    return peers.mcp_url.removesuffix("/mcp")


def _discovered(server: McpServer) -> McpServer:
    services.oauth_discover(server=server)
    return McpServer.objects.get(pk=server.pk)


@_peers(challenge_metadata=False)
@pytest.mark.django_db
def test_it_finds_resource_metadata_at_the_path_suffixed_url_without_a_hint(oauth_server, peers):
    challenge = httpx.post(peers.mcp_url, json={}).headers["www-authenticate"]

    server = _discovered(oauth_server)

    assert "resource_metadata" not in challenge
    assert server.oauth_config.token_url == f"{peers.issuer}/token"
    well_known = f"{_rs_origin(peers)}/.well-known/oauth-protected-resource/mcp"
    assert ("GET", well_known, 200) in peers.hits


@_peers(challenge_metadata=False, resource_metadata_at="root")
@pytest.mark.django_db
def test_it_falls_back_to_the_root_resource_metadata_url(oauth_server, peers):
    server = _discovered(oauth_server)

    assert server.oauth_config.token_url == f"{peers.issuer}/token"
    assert server.oauth_metadata["resource"] == peers.mcp_url
    well_known = f"{_rs_origin(peers)}/.well-known/oauth-protected-resource"
    assert [(url, status) for _, url, status in peers.hits if "/.well-known/" in url] == [
        (f"{well_known}/mcp", 404),
        (well_known, 200),
        (f"{peers.issuer}/.well-known/oauth-authorization-server", 200),
    ]


@_peers(server_metadata="openid")
@pytest.mark.django_db
def test_it_falls_back_to_openid_configuration(oauth_server, peers):
    server = _discovered(oauth_server)

    assert server.oauth_config.authorization_url == f"{peers.issuer}/authorize"
    assert server.oauth_config.registration_endpoint == f"{peers.issuer}/register"
    assert ("GET", f"{peers.issuer}/.well-known/oauth-authorization-server", 404) in peers.hits
    assert ("GET", f"{peers.issuer}/.well-known/openid-configuration", 200) in peers.hits


@_peers(issuer_path="/tenant")
@pytest.mark.django_db
def test_it_inserts_the_well_known_segment_before_the_issuers_path(oauth_server, peers):
    server = _discovered(oauth_server)

    assert server.oauth_config.issuer == f"{peers.as_origin}/tenant"
    assert server.oauth_config.token_url == f"{peers.as_origin}/tenant/token"
    metadata_url = f"{peers.as_origin}/.well-known/oauth-authorization-server/tenant"
    assert ("GET", metadata_url, 200) in peers.hits


@_peers(issuer_path="/tenant", server_metadata="openid")
@pytest.mark.django_db
def test_it_finds_openid_configuration_appended_to_the_issuers_path(oauth_server, peers):
    server = _discovered(oauth_server)

    assert server.oauth_config.token_url == f"{peers.as_origin}/tenant/token"
    assert ("GET", f"{peers.as_origin}/tenant/.well-known/openid-configuration", 200) in peers.hits


@_peers(
    challenge_metadata=False, resource_metadata_at="root", server_metadata="openid",
    issuer_path="/tenant",
)  # fmt: skip
@pytest.mark.django_db
def test_it_connects_when_every_hint_is_missing(oauth_server, peers, admin_user: User):
    response = connect(server=oauth_server, user=admin_user)

    assert response.status_code == 200, response.content
    server = McpServer.objects.get(pk=oauth_server.pk)
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]


@_peers(advertised_issuer="https://other-issuer.example.com")
@pytest.mark.django_db
def test_it_refuses_metadata_that_names_another_issuer(oauth_server, peers):
    with pytest.raises(OAuthError) as caught:
        services.oauth_discover(server=oauth_server)

    assert "other-issuer.example.com" in str(caught.value)
    assert McpServer.objects.get(pk=oauth_server.pk).oauth_config.token_url == ""
