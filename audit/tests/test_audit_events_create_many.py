"""audit_events_create_many: several events, one INSERT, filled like audit_event_create."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import RequestContext, current_request
from audit.models import AuditEvent
from audit.services import AuditEntry, audit_events_create_many
from tests.factories import McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_writes_every_event_with_one_insert() -> None:
    server = McpServerFactory()
    entries = [AuditEntry(action="status_changed", target=server, changes={"n": n}) for n in (1, 2)]

    with CaptureQueriesContext(connection) as queries:
        audit_events_create_many(entries=entries)

    # one statement: INSERT on SQL, db.audit_auditevent.insert_many(...) on MongoDB
    assert len(queries.captured_queries) == 1
    assert "insert" in queries.captured_queries[0]["sql"].split("(")[0].lower()
    rows = AuditEvent.objects.order_by("id")
    assert [(e.entity_id, e.changes) for e in rows] == [
        (str(server.pk), {"n": 1}),
        (str(server.pk), {"n": 2}),
    ]


def test_it_fills_the_request_context_and_the_actor() -> None:
    user = UserFactory()
    token = current_request.set(RequestContext(ip="192.0.2.7", request_id="req-1"))
    try:
        audit_events_create_many(entries=[AuditEntry(action="update", entity_type="x", actor=user)])
    finally:
        current_request.reset(token)

    event = AuditEvent.objects.get()
    assert (event.request_ip, event.request_id, event.actor) == ("192.0.2.7", "req-1", user)
    assert event.timestamp is not None
