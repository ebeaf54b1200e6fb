"""An If-Match naming a huge number is a stale version (412), not a 500.

int() refuses strings of more than 4300 digits (ValueError), so the If-Match reader
(mcpcontrol/api/ifmatch.py) bounds the digits it accepts.
"""

import pytest

from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("digits", [5000, 4301])
def test_it_answers_412_for_an_if_match_with_thousands_of_digits(admin_api, digits):
    server = McpServerFactory()

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}",
        {"description": "n"},
        format="json",
        HTTP_IF_MATCH=f'W/"{"9" * digits}"',
    )

    assert response.status_code == 412
    assert response.json()["error"] == "precondition_failed"
    server.refresh_from_db()
    assert server.description != "n"


def test_it_still_answers_412_for_a_long_but_parsable_if_match(admin_api):
    server = McpServerFactory()

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}",
        {"description": "n"},
        format="json",
        HTTP_IF_MATCH=f'W/"{"9" * 40}"',
    )

    assert response.status_code == 412
