"""The one guard every outbound URL passes (SSRF protection)."""

import pytest

from mcpcontrol.lib.urlguard import BlockedUrl, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://169.254.10.1/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_it_always_refuses_link_local_and_metadata_addresses(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://x/", "ftp://example.com/", "//no-scheme"]
)
def test_it_refuses_schemes_other_than_http_and_websocket(url):
    with pytest.raises(BlockedUrl, match="scheme"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/mcp", "ws://10.1.2.3/ws", "https://192.168.1.5/", "http://[::1]/"],
)
def test_it_refuses_private_addresses_unless_allowed(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    with pytest.raises(BlockedUrl, match="MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS"):
        check_url(url)


def test_it_allows_private_addresses_when_the_setting_allows(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    assert check_url("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/mcp"


def test_it_refuses_a_name_that_resolves_to_a_private_address(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    with pytest.raises(BlockedUrl, match="localhost"):
        check_url("http://localhost:9/")


def test_it_allows_a_public_address(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    assert check_url("https://8.8.8.8/mcp") == "https://8.8.8.8/mcp"


def test_it_refuses_a_url_without_a_host():
    with pytest.raises(BlockedUrl, match="no host"):
        check_url("http:///path")


def test_it_refuses_unroutable_addresses(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl, match="routable"):
        check_url("http://0.0.0.0/")
