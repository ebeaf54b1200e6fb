"""Password guessing is throttled per client address and per username, on both doors.

The client address is REMOTE_ADDR unless MCPCONTROL_TRUSTED_PROXIES says how many proxies
append to X-Forwarded-For: a header anyone can send must not mint new addresses.
"""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def _mid_minute():
    """Failures are counted per clock minute: start each test 5 s into one (the clock keeps
    running), so a burst of attempts never straddles a new minute and its fresh count."""
    start = timezone.now().replace(second=5, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=True):
        yield


def _admin_login(client, username, password, ip=None):
    extra = {"HTTP_X_FORWARDED_FOR": ip} if ip else {}
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **extra
    )


def _token(client, username, password, ip=None):
    extra = {"HTTP_X_FORWARDED_FOR": ip} if ip else {}
    body = {"username": username, "password": password}
    return client.post("/api/v1/auth/token", body, format="json", **extra)


def test_a_rotating_forwarded_for_does_not_escape_the_api_token_throttle():
    """Finding 5: 60 wrong passwords, each from a new X-Forwarded-For, got 0 x 429."""
    admin = AdminFactory()
    client = APIClient()

    codes = [
        _token(client, admin.username, "wrong", f"203.0.113.{i}").status_code for i in range(60)
    ]

    assert 429 in codes
    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}


def test_a_rotating_forwarded_for_does_not_escape_the_admin_login_throttle():
    admin = AdminFactory()
    client = Client()

    responses = [_admin_login(client, admin.username, "wrong", f"203.0.113.{i}") for i in range(60)]

    codes = [r.status_code for r in responses]
    assert codes[:10] == [200] * 10  # the login page again, with "please enter the correct..."
    assert set(codes[10:]) == {429}
    assert "Too many failed login attempts" in responses[-1].content.decode()
    assert responses[-1]["Retry-After"]


def test_a_locked_username_is_refused_even_with_the_right_password():
    admin = AdminFactory()
    client = Client()
    for _ in range(10):
        _admin_login(client, admin.username, "wrong")

    response = _admin_login(client, admin.username, PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_failures_on_one_door_count_on_the_other():
    admin = AdminFactory()
    for _ in range(10):
        _token(APIClient(), admin.username, "wrong")

    assert _admin_login(Client(), admin.username, PASSWORD).status_code == 429


def test_it_throttles_per_username_across_addresses_behind_a_trusted_proxy(settings):
    settings.MCPCONTROL_TRUSTED_PROXIES = 1
    admin = AdminFactory()
    client = Client()

    codes = [
        _admin_login(client, admin.username, "wrong", f"203.0.113.{i}").status_code
        for i in range(11)
    ]

    assert codes == [200] * 10 + [429]


def test_it_throttles_per_address_across_usernames():
    client = Client()

    codes = [_admin_login(client, f"nobody{i}", "wrong").status_code for i in range(11)]

    assert codes == [200] * 10 + [429]


def test_other_addresses_and_users_are_not_locked_out_behind_a_trusted_proxy(settings):
    settings.MCPCONTROL_TRUSTED_PROXIES = 1
    admin, other = AdminFactory(), AdminFactory()
    client = Client()
    for i in range(10):
        _admin_login(client, f"nobody{i}", "wrong", "203.0.113.9")

    assert _admin_login(client, other.username, PASSWORD, "198.51.100.1").status_code == 302
    assert _admin_login(Client(), admin.username, PASSWORD, "203.0.113.9").status_code == 429


def test_the_lock_ends_after_the_window():
    admin = AdminFactory()
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(10):
            _admin_login(client, admin.username, "wrong")
        assert _admin_login(client, admin.username, PASSWORD).status_code == 429

        clock.shift(timedelta(minutes=2))

        assert _admin_login(client, admin.username, PASSWORD).status_code == 302


def test_a_successful_login_is_not_counted():
    admin = AdminFactory()

    codes = [_token(APIClient(), admin.username, PASSWORD).status_code for _ in range(12)]

    assert codes == [200] * 12


def test_the_audit_trail_ignores_a_forwarded_for_it_cannot_trust(admin_api):
    admin_api.post(
        "/api/v1/servers",
        {"server_name": "W", "url": "https://w.example.com/mcp"},
        format="json",
        HTTP_X_FORWARDED_FOR="198.51.100.66",
    )

    assert AuditEvent.objects.get().request_ip == "127.0.0.1"


def test_the_audit_trail_takes_the_address_the_trusted_proxy_saw(admin_api, settings):
    settings.MCPCONTROL_TRUSTED_PROXIES = 1
    admin_api.post(
        "/api/v1/servers",
        {"server_name": "W", "url": "https://w.example.com/mcp"},
        format="json",
        HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.66",  # the first one is the client's claim
    )

    assert AuditEvent.objects.get().request_ip == "198.51.100.66"
