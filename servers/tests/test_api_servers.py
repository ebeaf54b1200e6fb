import pytest

from tests.factories import McpServerFactory

pytest_plugins = ["tests.api_fixtures"]

pytestmark = pytest.mark.django_db


def test_it_lists_servers(user_client):
    McpServerFactory()
    response = user_client.get("/api/v1/servers")
    assert response.status_code == 200, response.content
    assert response.json()["pagination"]["total"] == 1
