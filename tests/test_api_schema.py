"""Property-based run of schemathesis against /api/schema/: no input may cause a 5xx.

Bounded on purpose (a few examples per operation) so it runs in seconds in the suite; run it
with more examples by hand when changing the API (SCHEMATHESIS_EXAMPLES=50).
"""

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.factories import AgentFactory, McpServerFactory, TokenFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "3"))


def _load_schema() -> schemathesis.schemas.BaseSchema:
    """The served OpenAPI document, generated in-process (no DB or HTTP at collection)."""
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def seeded(db, settings, admin):
    settings.ALLOWED_HOSTS = ["*"]
    # Generous throttles: this test is many writes by one admin within a second.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100000/min", "token_generation": "100000/min"},
    }
    # A few rows so that small ids exist and detail paths do not only 404.
    McpServerFactory.create_batch(3)
    AgentFactory.create_batch(2, owner=admin)
    TokenFactory.create_batch(2, user=admin)
    # As Django's test client does: the WSGI handler would otherwise close the test's
    # connection at the end of each request (and with it the test transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_it_never_answers_5xx(case, seeded, admin_api):
    token = admin_api._credentials["HTTP_AUTHORIZATION"]
    response = case.call(headers={"Authorization": token})
    case.validate_response(response, checks=[not_a_server_error])
