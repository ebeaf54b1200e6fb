"""A URL that urlsplit() cannot read is a validation error (400), not a 500.

`http://[::1/mcp` (an unclosed IPv6 literal) makes urlsplit() raise ValueError; the model's
validation and the save-time URL guard both report it on the field.
"""

import pytest

from servers.models import McpServer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["http://[::1/mcp", "https://[fe80::1%25eth0/mcp", "http://]/mcp"])
def test_it_refuses_an_unreadable_url_with_400(user_api, url):
    response = user_api.post("/api/v1/servers", {"server_name": "X", "url": url}, format="json")

    assert response.status_code == 400
    assert "url" in response.json()["fields"]
    assert not McpServer.objects.exists()
