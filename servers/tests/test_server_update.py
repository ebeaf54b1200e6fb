import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from servers import services
from servers.models import McpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def server() -> McpServer:
    return services.server_register(
        actor=None, name="Docs", transport_type="sse", url="https://docs.example.com/sse",
        auth_type="bearer", auth_secret="first-secret",
    )  # fmt: skip


def test_it_bumps_the_version_on_update(server):
    updated = services.server_update(actor=None, server=server, changes={"description": "new"})

    assert updated.version == 2
    assert McpServer.objects.get(pk=server.pk).version == 2


def test_it_refuses_a_stale_version(server):
    stale = McpServer.objects.get(pk=server.pk)
    services.server_update(actor=None, server=server, changes={"description": "first"})

    with pytest.raises(services.VersionConflict) as caught:
        services.server_update(actor=None, server=stale, changes={"description": "second"})

    assert caught.value.current_version == 2
    assert caught.value.provided_version == 1
    assert McpServer.objects.get(pk=server.pk).description == "first"


def test_it_audits_changes_with_secrets_redacted(server):
    user = User.objects.create(username="op")

    services.server_update(
        actor=user, server=server, changes={"description": "d"}, auth_secret="second-secret"
    )

    event = AuditEvent.objects.get(action="update", entity_type="server")
    assert event.actor == user
    assert event.changes == {"description": {"old": "", "new": "d"}}
    grant_event = AuditEvent.objects.get(action="update", entity_type="grant")
    assert grant_event.actor == user
    assert grant_event.changes["secret"] == {"old": "[redacted]", "new": "[redacted]"}
    assert "second-secret" not in str(AuditEvent.objects.values_list("changes", flat=True)[::1])


def test_a_create_audit_event_never_holds_the_secret(server):
    events = AuditEvent.objects.filter(action="create").values_list("changes", flat=True)

    grant_event = AuditEvent.objects.get(action="create", entity_type="grant")
    assert grant_event.changes["secret"] == {"old": None, "new": "[redacted]"}
    assert "gAAAAA" not in str(list(events))
    assert "first-secret" not in str(list(events))


def test_toggle_disables_and_audits(server):
    services.server_set_enabled(actor=None, server=server, enabled=False)

    assert McpServer.objects.get(pk=server.pk).is_enabled is False
    assert AuditEvent.objects.filter(action="toggle").count() == 1


def test_delete_removes_the_row_and_audits(server):
    services.server_delete(actor=None, server=server)

    assert not McpServer.objects.exists()
    assert AuditEvent.objects.filter(action="delete", entity_id=str(server.pk)).exists()
