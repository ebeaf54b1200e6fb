"""The console's landing page: what needs attention first, then the fleet at a glance.

Composition root (it reads servers, credentials and audit): every section is shown only to
a user whose Django permissions allow it (view_mcpserver, view_grant, view_auditevent), and
servers are always McpServer.objects.for_user. Staff status alone shows nothing but the
links to the model index.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from credentials.models import Grant
from mcpcontrol.console import charts
from servers.admin.health import state_help
from servers.models import CheckResult, McpServer

# Charts per server on the page: the servers needing attention first, then by name.
SERVER_CHARTS = 12
# At most this many history rows feed the overall chart (the newest): a page never reads a
# whole day of a large fleet.
OVERALL_ROWS = 50_000
FAILING = {"degraded", "unreachable", "timeout", "protocol_error", "auth_required"}


@dataclass(frozen=True)
class Attention:
    """One row of "needs attention": which server, why in words, and the fixing action."""

    server: McpServer
    reason: str
    action: str  # check, connect or edit
    url: str


def _attention(servers: list[McpServer], reauth: set[int], can_change: bool) -> list[Attention]:
    rows = []
    for server in servers:
        state = server.state
        if state not in FAILING and server.id not in reauth:
            continue
        edit = reverse("admin:servers_mcpserver_change", args=[server.pk])
        if server.id in reauth:
            reason, action = "the OAuth grant needs re-authorization", "connect"
        elif state == "auth_required":
            reason = server.state_message or "credentials are missing or refused"
            action = "connect" if server.auth_type == McpServer.AuthType.OAUTH else "edit"
        elif state == "protocol_error":
            reason, action = server.state_message, "edit"
        else:
            reason, action = server.state_message, "check"
        if not can_change:
            action = "view"
        rows.append(Attention(server=server, reason=reason, action=action, url=edit))
    # unreachable/timeout/protocol errors first, degraded last
    return sorted(rows, key=lambda r: (r.server.state == "degraded", r.server.name))


def _server_sections(request: HttpRequest, visible: Any) -> dict[str, Any]:
    servers = list(visible.order_by("name"))
    grants = Grant.objects.filter(server__in=visible)
    reauth = set(grants.filter(needs_reauth=True).values_list("server_id", flat=True))
    can_change = request.user.has_perm("servers.change_mcpserver")
    attention = _attention(servers, reauth, can_change)
    by_state = Counter(str(s.state) for s in servers)
    context: dict[str, Any] = {
        "attention": attention,
        "by_state": [(McpServer.State(k).label, by_state[k]) for k in McpServer.State.values
                     if by_state[k]],
        "by_transport": list(visible.values_list("transport_type").annotate(n=Count("id"))
                             .order_by("transport_type")),
        "server_total": len(servers),
        "state_help": state_help(),
    }  # fmt: skip
    context.update(_charts(visible, [a.server for a in attention] + servers))
    if request.user.has_perm("credentials.view_grant"):
        context["show_grants"] = True
        soon = timezone.now() + timedelta(hours=1)
        context["expiring"] = list(
            grants.filter(expires_at__isnull=False, expires_at__lte=soon)
            .select_related("server", "agent")
            .order_by("expires_at")[:50]
        )
    return context


def _charts(visible: Any, ordered: list[McpServer]) -> dict[str, Any]:
    now = timezone.now()
    since = now - timedelta(hours=24)
    history = CheckResult.objects.filter(server__in=visible, checked_at__gte=since)
    rows = history.order_by("-checked_at").values_list("checked_at", "outcome", "duration_ms")
    overall = charts.hourly(rows[:OVERALL_ROWS], now=now)
    picked = list(dict.fromkeys(ordered))[:SERVER_CHARTS]
    per_server = []
    for server in picked:
        mine = history.filter(server=server).values_list("checked_at", "outcome", "duration_ms")
        buckets = charts.hourly(mine, now=now)
        if any(b.outcomes for b in buckets):
            per_server.append((server, charts.chart_pair(buckets, name=server.name)))
    return {
        "overall_chart": charts.chart_pair(overall, name="All servers"),
        "has_history": any(b.outcomes for b in overall),
        "server_charts": per_server,
    }


def index(request: HttpRequest) -> HttpResponse:
    """The admin's landing page (the model index is at admin_models)."""
    user = request.user
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Dashboard"}
    if user.has_perm("servers.view_mcpserver"):
        context["servers"] = True
        context.update(_server_sections(request, McpServer.objects.for_user(user)))
    if user.has_perm("audit.view_auditevent"):
        context["show_audit"] = True
        context["audit_events"] = list(
            AuditEvent.objects.select_related("actor").order_by("-timestamp", "-id")[:20]
        )
    return TemplateResponse(request, "admin/mcpcontrol_dashboard.html", context)
