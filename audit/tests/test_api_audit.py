from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from tests.factories import McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _event(action="create", actor=None, entity_type="mcpserver"):
    return audit_event_create(action=action, entity_type=entity_type, entity_id="1", actor=actor)


def test_it_lists_audit_logs(admin_api, admin):
    _event(actor=admin)
    body = admin_api.get("/api/v1/admin/audit").json()
    assert (body["total"], body["page"], body["per_page"]) == (1, 1, 20)
    assert body["logs"][0]["username"] == admin.username
    assert set(body["logs"][0]) == {"id", "action", "entity_type", "entity_id", "user_id", "username",
                                    "changes", "timestamp"}  # fmt: skip


def test_it_filters_audit_logs_by_entity_type(admin_api):
    _event(entity_type="mcpserver")
    _event(entity_type="token")
    logs = admin_api.get("/api/v1/admin/audit?entity_type=token").json()["logs"]
    assert [log["entity_type"] for log in logs] == ["token"]


def test_it_filters_audit_logs_by_user_id(admin_api):
    actor = UserFactory()
    _event(actor=actor)
    _event()
    logs = admin_api.get(f"/api/v1/admin/audit?user_id={actor.pk}").json()["logs"]
    assert [log["user_id"] for log in logs] == [str(actor.pk)]


def test_it_filters_audit_logs_by_action(admin_api):
    _event(action="create")
    _event(action="delete")
    logs = admin_api.get("/api/v1/admin/audit?action=delete").json()["logs"]
    assert [log["action"] for log in logs] == ["delete"]


def test_it_filters_audit_logs_by_start_date(admin_api):
    old = _event()
    AuditEvent.objects.filter(pk=old.pk).update(timestamp=timezone.now() - timedelta(days=3))
    _event()
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert admin_api.get(f"/api/v1/admin/audit?start_date={since}").json()["total"] == 1


def test_it_filters_audit_logs_by_end_date(admin_api):
    old = _event()
    AuditEvent.objects.filter(pk=old.pk).update(timestamp=timezone.now() - timedelta(days=3))
    _event()
    until = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert admin_api.get(f"/api/v1/admin/audit?end_date={until}").json()["total"] == 1


def test_it_rejects_a_bad_date(admin_api):
    response = admin_api.get("/api/v1/admin/audit?start_date=yesterday")
    assert response.status_code == 400
    assert "start_date" in response.json()["fields"]


def test_it_accepts_an_offset_the_database_could_not_store(admin_api):
    _event()
    # +23:18 is valid ISO 8601 but past PostgreSQL's ±16 h: it must be compared in UTC.
    response = admin_api.get("/api/v1/admin/audit?start_date=2000-06-02T12:33:05%2B23:18")
    assert response.status_code == 200
    assert response.json()["total"] == 1


def test_it_rejects_a_date_that_leaves_the_calendar_in_utc(admin_api):
    response = admin_api.get("/api/v1/admin/audit?end_date=0001-01-01T00:00:00%2B05:00")
    assert response.status_code == 400
    assert "end_date" in response.json()["fields"]


@pytest.mark.parametrize("per_page", [5, 50])
def test_it_lists_audit_logs_in_a_constant_number_of_queries(
    admin_api, django_assert_max_num_queries, per_page
):
    for _ in range(per_page):
        _event(actor=UserFactory())
    with django_assert_max_num_queries(3):
        assert (
            len(admin_api.get(f"/api/v1/admin/audit?per_page={per_page}").json()["logs"])
            == per_page
        )


def test_it_records_api_writes_with_the_actor(admin_api, admin):
    server = McpServerFactory()
    admin_api.delete(f"/api/v1/servers/{server.pk}")
    log = admin_api.get("/api/v1/admin/audit?action=delete").json()["logs"][0]
    assert (log["entity_id"], log["user_id"]) == (str(server.pk), str(admin.pk))
