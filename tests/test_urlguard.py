"""The one guard every outbound URL passes (SSRF protection)."""

import socket

import pytest

from mcpcontrol.lib.urlguard import BlockedUrl, check_url, check_url_static


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


# --- every spelling of a forbidden address -----------------------------------------------

# Refused whatever MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS says: metadata and link-local
# addresses, and addresses that route nowhere, in every form an upstream URL can spell them.
ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254./",  # trailing dot
    "http://169.254.10.1/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::169.254.169.254]/",  # IPv4-compatible
    "http://[::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",  # 6to4
    "http://[2002:a9fe:a9fe:1::1]/",
    "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",  # Teredo, client 169.254.169.254
    "http://[2001:0:a9fe:a9fe:8000:63bf:3fff:fdd2]/",  # Teredo, server 169.254.169.254
    "http://[64:ff9b::169.254.169.254]/",  # NAT64 well-known prefix
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::a9fe:a9fe]/",  # NAT64 local-use, /96
    "http://[64:ff9b:1:a9fe:a9:fe00::]/",  # NAT64 local-use, /48
    "http://[64:ff9b:1:0:a9:fea9:fe00:0]/",  # NAT64 local-use, /64
    "http://2852039166/",  # decimal
    "http://0xA9FEA9FE/",  # hex
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/",  # octal
    "http://169.254.43518/",  # three parts
    "http://169.16689662/",  # two parts
    "http://0251.0xfe.43518/",  # mixed
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",  # fullwidth digits fold to ASCII
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "https://[::ffff:169.254.169.254]:443/",
    "ws://169.254.169.254/",
    "wss://[2002:a9fe:a9fe::]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata.google.internal./",
    "http://METADATA.GOOGLE.INTERNAL/",
    "http://\uff4d\uff45\uff54\uff41\uff44\uff41\uff54\uff41.google.internal/",
    "http://metadata/",
    "http://instance-data/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[::ffff:224.0.0.1]/",
]

# Refused unless MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS: loopback and private ranges, all forms.
PRIVATE_REFUSED = [
    "http://127.0.0.1:8000/mcp",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://mcp.localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://10.0.0.1/",
    "http://012.0.0.1/",
    "http://0xa.0.0.1/",
    "http://167772161/",
    "http://192.168.0.1/",
    "http://172.16.0.1/",
    "http://[fd00::1]/",
    "http://[2002:c0a8:1::]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
    "ws://127.0.0.1:8765/",
]

# Refused for their shape, whatever the address.
MALFORMED = [
    "file:///etc/passwd",
    "gopher://example.com:70/_",
    "ftp://example.com/",
    "dict://example.com:11211/",
    "ldap://example.com/",
    "javascript:alert(1)",
    "data:text/html,hi",
    "jar:http://example.com!/",
    "//example.com/",
    "example.com/mcp",
    "http://[::1/mcp",
    "http://[::1]x/",
    "http://[v1.fe]/",
    "http://example.com:99999/",
    "http://example.com:port/",
    "http:///path",
    "http://",
    "http://exa%6dple.com/",
    "http://a..b/",
    "http://example.com/\r\nHost: evil.example",
    "http://exa\nmple.com/",
    "http://example.com/\x00",
    "http://example.com /",
    " http://example.com/",
    "http://example.com/\t",
    "http://169.254.169.254\r\n.example.com/",
    "http://example.com/\u2028",
    "http://user:pass@example.com/",
    "http://example.com@169.254.169.254/",
    "http://trusted.example\\@evil.example/",
    "http://@example.com/",
]

ALLOWED = [
    "https://example.com/mcp",
    "https://EXAMPLE.com/mcp",
    "http://8.8.8.8/",
    "http://8.8.8.8:8080/path?q=1#frag",
    "https://[2606:4700:4700::1111]/",
    "http://[2002:808:808::]/",  # 6to4 of a public address
    "http://[64:ff9b::808:808]/",  # NAT64 of a public address (DNS64 networks)
    "ws://example.com/ws",
    "wss://mcp.example.com:8443/x?y=1",
    "https://bücher.example/",
    "http://a_b.example.com/",
    "http://example.com./",
    "http://08.1.1.1/",  # not a number to inet_aton: an ordinary (odd) name
    "https://example.com/path%0d%0a",  # encoded, so sent as is
]


def test_the_tables_hold_at_least_sixty_hostile_urls():
    assert len(ALWAYS_REFUSED) + len(PRIVATE_REFUSED) + len(MALFORMED) >= 60


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_it_refuses_every_form_of_metadata_and_unroutable_addresses_at_save(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl, match=r"metadata|not a routable"):
        check_url_static(url)


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_it_refuses_every_form_of_metadata_and_unroutable_addresses_at_use(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl):
        check_url(url)


@pytest.mark.parametrize("url", PRIVATE_REFUSED)
def test_it_refuses_every_form_of_private_addresses_unless_allowed(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    with pytest.raises(BlockedUrl, match="MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS"):
        check_url_static(url)
    with pytest.raises(BlockedUrl, match="MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS"):
        check_url(url, resolve=False)


@pytest.mark.parametrize("url", PRIVATE_REFUSED)
def test_it_allows_every_form_of_private_addresses_when_allowed(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    assert check_url_static(url) == url


@pytest.mark.parametrize("url", MALFORMED)
def test_it_refuses_urls_of_a_bad_shape_at_save(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl):
        check_url_static(url)


@pytest.mark.parametrize("url", ALLOWED)
def test_it_allows_public_urls_at_save(settings, url):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    assert check_url_static(url) == url


# --- how it refuses ------------------------------------------------------------------------


def test_it_makes_no_dns_lookup_at_save(settings, monkeypatch):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    def no_dns(*args, **kwargs):
        raise AssertionError("check_url_static resolved a name")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    assert check_url_static("https://rebind.example/mcp") == "https://rebind.example/mcp"


def test_a_malformed_url_is_a_blocked_url_with_the_reason_not_a_value_error():
    for check in (check_url, check_url_static):
        with pytest.raises(BlockedUrl, match="not a valid URL: Invalid IPv6 URL"):
            check("http://[::1/mcp")


def test_it_says_which_character_is_unsafe():
    with pytest.raises(BlockedUrl, match=r"control character \('\\r'\)"):
        check_url_static("http://example.com/\r\nX-Injected: 1")


def test_it_refuses_credentials_in_the_url():
    with pytest.raises(BlockedUrl, match="must not carry credentials"):
        check_url_static("https://user:secret@example.com/mcp")


@pytest.mark.parametrize(
    "host",
    [
        "::ffff:a9fe:a9fe",
        "::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "2001:0:a9fe:a9fe:8000:63bf:3fff:fdd2",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1:a9fe:a9:fe00::",
    ],
)
def test_it_refuses_an_ipv6_form_for_the_ipv4_address_it_carries(settings, host):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True

    with pytest.raises(BlockedUrl, match=f"^{host} is a link-local or cloud metadata address$"):
        check_url_static(f"http://[{host}]/")


def test_allowed_schemes_narrows_the_schemes(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False
    web = {"http", "https"}

    assert check_url_static("https://as.example/token", allowed_schemes=web)
    with pytest.raises(BlockedUrl, match=r"scheme 'wss' is not allowed; use http, https"):
        check_url_static("wss://as.example/token", allowed_schemes=web)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.1", "0177.0.1", "0x7F.0.0.01",
     "017700000001", "127.0.0x1", "127.0.0.01"],
)  # fmt: skip
def test_it_reads_numeric_hosts_as_the_resolver_does(settings, host):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False
    assert socket.inet_aton(host) == bytes([127, 0, 0, 1])  # the C library agrees: loopback

    with pytest.raises(BlockedUrl, match="loopback"):
        check_url_static(f"http://{host}/")
