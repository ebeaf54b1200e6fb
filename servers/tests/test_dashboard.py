"""The console's landing page: failing servers first with their reason and action, the
fleet by state and transport, charts from the check history, all limited to what the
user's Django permissions and for_user allow."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from audit.models import AuditEvent
from servers.models import CheckResult
from tests.factories import McpServerFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def _failing(name, outcome="unreachable", failures=3, **fields):
    message = {
        "unreachable": "cannot connect: [Errno 111] Connection refused",
        "timeout": "no answer to initialize within 5s",
    }[outcome]
    return McpServerFactory(
        name=name, url="http://127.0.0.1:8765/mcp", consecutive_failures=failures,
        status="error" if failures >= 3 else "active", error_message=f"{outcome}: {message}",
        **fields,
    )  # fmt: skip


def _staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_the_admin_opens_on_the_dashboard_with_the_failing_server_first(admin_client):
    McpServerFactory(name="aaa-healthy", last_connected_at=timezone.now())
    _failing("zzz-slow", outcome="timeout", failures=1)  # degraded: listed after
    _failing("mmm-down")

    page = admin_client.get("/admin/")

    assert page.status_code == 200
    rows = page.context["attention"]
    assert [r.server.name for r in rows] == ["mmm-down", "zzz-slow"]
    assert rows[0].reason == "cannot connect to 127.0.0.1:8765: connection refused"
    assert rows[0].action == "check"
    html = page.content.decode()
    assert html.index("mmm-down") < html.index("Servers by state")
    assert "Check now" in html


def test_the_plain_model_index_is_one_click_away(admin_client):
    page = admin_client.get("/admin/")

    assert 'href="/admin/models/"' in page.content.decode()
    assert admin_client.get("/admin/models/").status_code == 200


def test_staff_status_alone_shows_nothing(client):
    _failing("down")
    AuditEvent.objects.create(action="created", entity_type="server", entity_id="1")
    client.force_login(StaffFactory())

    html = client.get("/admin/").content.decode()

    assert "down" not in html
    assert "audit events" not in html
    assert "no permission" in html


@pytest.mark.emulator_gap(
    "SecantusDB answers values_list('content_type__app_label', 'codename') (the $lookup join "
    "ModelBackend.get_all_permissions runs) with the content type's id: a non-superuser's "
    "permissions never match (docs/storage.md)"
)
def test_a_user_sees_only_the_servers_and_sections_they_may(client):
    viewer = _staff_with("view_mcpserver")
    _failing("theirs-down", scope="private_user", owner=UserFactory())
    _failing("app-down")
    AuditEvent.objects.create(action="created", entity_type="server", entity_id="1")
    client.force_login(viewer)

    page = client.get("/admin/")

    html = page.content.decode()
    assert "app-down" in html and "theirs-down" not in html
    assert "Last 20 audit events" not in html
    assert page.context["attention"][0].action == "view"  # no change permission


def test_charts_are_inline_svg_from_the_check_history(admin_client):
    server = McpServerFactory(name="charted", last_connected_at=timezone.now())
    now = timezone.now()
    CheckResult.objects.bulk_create(
        CheckResult(server=server, checked_at=now - timedelta(minutes=m), outcome=o,
                    duration_ms=d)
        for m, o, d in ((5, "healthy", 40), (65, "healthy", 90), (70, "timeout", None))
    )  # fmt: skip

    html = admin_client.get("/admin/").content.decode()

    assert html.count("<svg") >= 4  # overall and per server: outcomes and p50/p95
    assert "<script" not in html.split('id="charts"')[1].split("</section>")[0]
    assert "timeout: 1" in html


def test_grants_expiring_within_the_hour_are_listed(admin_client):
    from credentials.models import Grant

    server = McpServerFactory(name="oauthy", auth_type="oauth")
    Grant.objects.create(server=server, kind="oauth", secret="x",
                         expires_at=timezone.now() + timedelta(minutes=20))  # fmt: skip

    page = admin_client.get("/admin/")

    assert [g.server.name for g in page.context["expiring"]] == ["oauthy"]


def test_check_now_from_the_dashboard_checks_the_real_server(admin_client, refused_url):
    server = McpServerFactory(name="down", url=refused_url, timeout_ms=3000)

    response = admin_client.post(f"/admin/servers/mcpserver/{server.pk}/check/",
                                 {"next": "/admin/"}, follow=True)  # fmt: skip

    text = " ".join(str(m) for m in response.context["messages"])
    assert "connection refused" in text
    assert CheckResult.objects.filter(server=server, outcome="unreachable").exists()


def test_check_now_of_a_server_the_user_may_not_see_is_404(client):
    client.force_login(_staff_with("view_mcpserver", "change_mcpserver"))
    hidden = McpServerFactory(scope="private_user", owner=UserFactory())

    assert client.post(f"/admin/servers/mcpserver/{hidden.pk}/check/").status_code == 404
