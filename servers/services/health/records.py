"""After the sessions: what changed, planned per server and stored per chunk."""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.models import AuditEvent
from audit.services import AuditEntry, audit_events_create_many
from servers.mcp_client import Outcome, ProbeResult
from servers.models import CheckResult as CheckRow
from servers.models import McpServer
from servers.models.words import error_class
from servers.services.health.state import CONNECTED_REFRESH, ERROR_MESSAGE_MAX, CheckResult

logger = logging.getLogger(__name__)


def tools_diff(*, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """{added, removed, changed} between two tool lists; empty when nothing changed.

    A tool is "changed" when its input schema or description differs.
    """
    before = {t["name"]: t for t in old or []}
    after = {t["name"]: t for t in new or []}
    changed = {
        name: {"old": before[name], "new": after[name]}
        for name in sorted(before.keys() & after.keys())
        if before[name].get("inputSchema") != after[name].get("inputSchema")
        or before[name].get("description") != after[name].get("description")
    }
    diff = {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
    }
    return diff if any(diff.values()) else {}


@dataclass(kw_only=True)
class _Write:
    """What one check wants stored: the row's new columns and the audit entries for them."""

    check: CheckResult
    updates: dict[str, Any] = field(default_factory=dict)
    entries: list[AuditEntry] = field(default_factory=list)


def _status_entry(server: McpServer, new_status: str) -> AuditEntry:
    return AuditEntry(
        action=AuditEvent.Action.STATUS_CHANGED,
        target=server,
        changes={"status": {"old": server.status, "new": new_status}},
    )


def _success_updates(server: McpServer, result: ProbeResult, now: datetime) -> dict[str, Any]:
    """Columns a healthy check must write; empty for a steady healthy server."""
    updates: dict[str, Any] = {}
    if result.capabilities != server.capabilities:
        updates["capabilities"] = result.capabilities
    if result.protocol_version != server.protocol_version:
        updates["protocol_version"] = result.protocol_version
    stale = server.last_connected_at is None or now - server.last_connected_at > CONNECTED_REFRESH
    recovered = server.status != McpServer.Status.ACTIVE or server.consecutive_failures > 0
    if stale or recovered or server.error_message:
        updates.update(
            status=McpServer.Status.ACTIVE, consecutive_failures=0, error_message="",
            last_connected_at=now, last_checked_at=now, tools_last_synced_at=now,
            response_time_ms=result.response_time_ms, init_duration_ms=result.init_duration_ms,
        )  # fmt: skip
    return updates


def _plan_success(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    tools = result.tools or []
    diff = tools_diff(old=server.tools, new=tools)
    write = _Write(
        check=_check_result(server, result, tools_changed=bool(diff)),
        updates=_success_updates(server, result, now),
    )
    if diff:
        write.updates.update(tools=tools, tools_last_synced_at=now, last_checked_at=now)
    if diff or server.num_tools != len(tools):  # a declared count yields to the real one
        write.updates["num_tools"] = len(tools)
        write.entries.append(
            AuditEntry(action=AuditEvent.Action.TOOLS_CHANGED, target=server, changes=diff)
        )
    write.check.status = write.updates.get("status", server.status)
    if write.check.status != server.status:
        write.entries.append(_status_entry(server, write.check.status))
    return write


def _plan_failure(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    failures = server.consecutive_failures + 1
    threshold = settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD
    write = _Write(check=_check_result(server, result, tools_changed=False))
    write.updates = {
        "consecutive_failures": failures,
        "last_error_at": now,
        "last_checked_at": now,
        "error_message": f"{result.outcome}: {result.message}"[:ERROR_MESSAGE_MAX],
    }
    if failures >= threshold and server.status != McpServer.Status.ERROR:
        write.updates["status"] = McpServer.Status.ERROR
        write.entries.append(_status_entry(server, McpServer.Status.ERROR))
    write.check.status = write.updates.get("status", server.status)
    return write


def _check_result(server: McpServer, result: ProbeResult, *, tools_changed: bool) -> CheckResult:
    return CheckResult(
        server_id=server.id,
        name=server.name,
        outcome=str(result.outcome),
        message=result.message,
        response_time_ms=result.response_time_ms,
        tool_count=len(result.tools) if result.tools is not None else None,
        tools_changed=tools_changed,
        status=server.status,
    )


def cache_state(result: ProbeResult, previous: dict[str, Any], now: datetime) -> dict[str, Any]:
    healthy = result.outcome == Outcome.HEALTHY
    return {
        "outcome": str(result.outcome),
        "message": result.message,
        "checked_at": now.isoformat(),
        "connected": healthy,
        "last_connected_at": now.isoformat() if healthy else previous.get("last_connected_at"),
        "response_time_ms": result.response_time_ms,
        "init_duration_ms": result.init_duration_ms,
        "protocol_version": result.protocol_version,
        "tool_count": len(result.tools) if result.tools is not None else None,
        "stderr": result.stderr,
    }


def plan(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    if result.outcome == Outcome.HEALTHY:
        return _plan_success(server, result, now)
    if result.outcome == Outcome.DISABLED:  # not the server's fault: nothing to record
        return _Write(check=_check_result(server, result, tools_changed=False))
    return _plan_failure(server, result, now)


def _history_rows(writes: list[_Write], now: datetime) -> list[CheckRow]:
    """One CheckResult row per check, except refusals that are not the server's fault."""
    return [
        CheckRow(
            server_id=w.check.server_id,
            checked_at=now,
            outcome=w.check.outcome,
            duration_ms=w.check.response_time_ms,
            tool_count=w.check.tool_count,
            error_class=error_class(w.check.outcome, w.check.message),
        )
        for w in writes
        if w.check.outcome != Outcome.DISABLED
    ]


def save(writes: list[_Write], *, claim: str, now: datetime) -> None:
    """Store a chunk's changes in one transaction: a conditional UPDATE per changed server,
    then one INSERT of the audit events of the updates that applied and one INSERT of the
    chunk's check history. A cold sweep thus commits once per chunk instead of once per
    server, and each audit row still commits with the change it describes."""
    history = _history_rows(writes, now)
    pending = sorted((w for w in writes if w.updates), key=lambda w: w.check.server_id)
    if not pending:
        # A steady chunk opens no transaction: its one statement is the history INSERT.
        if history:
            CheckRow.objects.bulk_create(history)
        return
    entries: list[AuditEntry] = []
    with transaction.atomic():
        if history:
            CheckRow.objects.bulk_create(history)
        for write in pending:  # in id order, so writers of the same rows can't deadlock
            # Guarded by our claim: if the lease expired and another worker took over, we
            # lose quietly, and so do the audit events of this write.
            guarded = McpServer.objects.filter(id=write.check.server_id, check_claim=claim)
            if guarded.update(**write.updates) == 1:
                write.check.db_writes = sorted(write.updates)
                entries += write.entries
        if entries:
            audit_events_create_many(entries=entries)
