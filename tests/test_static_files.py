"""Under production settings the console is styled and the API docs load with no internet.

A real gunicorn (DEBUG off, collectstatic into its own STATIC_ROOT) serves the pages; every
stylesheet and script they reference must load from us, compressed, with the right type.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

pytestmark = pytest.mark.slow

HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.css: list[str] = []
        self.js: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.css.append(found["href"])
        if tag == "script" and found.get("src"):
            self.js.append(found["src"])


def assets_of(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


@pytest.fixture
def client(production_server):
    """Logged in to the console as the admin that ensure_admin created."""
    with httpx.Client(base_url=production_server.url, timeout=10) as client:
        client.get("/admin/login/")
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "admin",
                "password": production_server.admin_password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text[:500]
        yield client


def check_assets(client: httpx.Client, page: str) -> list[str]:
    response = client.get(page)
    assert response.status_code == 200
    assets = assets_of(response.text)
    assert assets.js, f"{page} references no script"
    loaded = []
    for kind, urls in (("text/css", assets.css), ("javascript", assets.js)):
        for url in urls:
            absolute = urljoin(str(response.url), url)
            assert urlsplit(absolute).netloc == urlsplit(str(client.base_url)).netloc, (
                f"{page} loads {url} from another host"
            )
            asset = client.get(absolute)
            assert asset.status_code == 200, url
            assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
            loaded.append(url)
    return loaded


def test_the_admin_console_loads_every_stylesheet_and_script(client):
    loaded = check_assets(client, "/admin/")

    # Hashed names: the compressed manifest storage is what serves them.
    assert any(url.endswith(".css") and HASHED.search(url) for url in loaded)
    assert any(url.endswith(".js") and HASHED.search(url) for url in loaded)


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_every_asset_from_our_own_static_files(client, page):
    loaded = check_assets(client, page)

    assert any("drf_spectacular_sidecar" in url for url in loaded)


def test_static_files_are_served_compressed_and_cached_forever(client):
    page = client.get("/admin/")
    css = urljoin(str(page.url), assets_of(page.text).css[0])
    response = client.get(css, headers={"Accept-Encoding": "gzip"})

    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
