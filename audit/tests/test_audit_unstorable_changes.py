"""An audit row never makes the change it records fail: what PostgreSQL cannot store in jsonb
or text (NUL, lone surrogates, non-finite numbers) is replaced, in keys and values alike."""

import pytest

from audit.models import AuditEvent
from audit.services import AuditEntry, audit_event_create, audit_events_create_many

pytestmark = pytest.mark.django_db


def test_it_stores_changes_with_nul_and_lone_surrogates_replaced() -> None:
    changes = {
        "env": {"old": {"A\x00B": "[redacted]"}, "new": {"\ud800": "[redacted]"}},
        "name": {"old": "x\x00y", "new": ["ok", "\udfff"]},
        "timeout": {"old": float("inf"), "new": float("nan")},
    }

    audit_event_create(action="update", entity_type="server", entity_id="1", changes=changes)

    assert AuditEvent.objects.get().changes == {
        "env": {"old": {"A\ufffdB": "[redacted]"}, "new": {"\ufffd": "[redacted]"}},
        "name": {"old": "x\ufffdy", "new": ["ok", "\ufffd"]},
        "timeout": {"old": "inf", "new": "nan"},
    }


def test_it_keeps_valid_text_unchanged() -> None:
    changes = {
        "name": {"old": "Wetter \U0001f326", "new": "caf\u00e9"},
        "n": {"old": 1, "new": 2.5},
    }

    audit_event_create(action="update", entity_type="server", entity_id="1", changes=changes)

    assert AuditEvent.objects.get().changes == changes


def test_a_batch_is_stored_with_the_same_replacements() -> None:
    entries = [AuditEntry(action="tools_changed", entity_type="server", changes={"t\x00": 1})]

    audit_events_create_many(entries=entries)

    assert AuditEvent.objects.get().changes == {"t\ufffd": 1}
