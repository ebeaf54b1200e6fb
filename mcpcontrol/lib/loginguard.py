"""Failed-login counting for both password doors: the admin login and POST /api/v1/auth/token.

Failures are counted per minute in the cache, per client address (client_ip) and per
username, and a door refuses to check a password once either count reaches
MCPCONTROL_LOGIN_FAILURES_PER_MINUTE in the current minute. Counting per username stops one
account from being guessed from many addresses; counting per address stops one address
from trying many accounts. A locked username locks its owner out for the rest of the minute
too: the price of not letting a botnet guess it.

The cache degrades to "nothing counted" when it is down (mcpcontrol.lib.cache): logins stay
possible during a Redis outage, unthrottled, rather than impossible for everyone.
"""

import contextlib
import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse

from mcpcontrol.lib.clientip import client_ip

WINDOW_SECONDS = 60
LOCKED_MESSAGE = "Too many failed login attempts. Wait a minute and try again."


def _keys(request: HttpRequest, username: str) -> list[str]:
    # Usernames are hashed: any text can be typed into the form, and keys must stay tame.
    user = hashlib.sha256(username.strip().casefold().encode("utf-8", "replace")).hexdigest()
    minute = int(time.time() // WINDOW_SECONDS)
    return [
        f"login-failures:ip:{client_ip(request)}:{minute}",
        f"login-failures:user:{user}:{minute}",
    ]


def login_locked(request: HttpRequest, username: str) -> bool:
    """Whether this address or this username used up its failures for the current minute."""
    counts = cache.get_many(_keys(request, username)).values()
    return any(count >= settings.MCPCONTROL_LOGIN_FAILURES_PER_MINUTE for count in counts)


def login_failed(request: HttpRequest, username: str) -> None:
    """Count one failed password check against the address and the username."""
    for key in _keys(request, username):
        cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
        # ValueError: expired or evicted since add(), or the cache is down: count nothing.
        with contextlib.suppress(ValueError):
            cache.incr(key)


class ThrottledAuthenticationForm(AuthenticationForm):
    """The user login form (/accounts/login/), refusing to check a password while the login
    is locked: the same counters as the admin's, so two doors do not double the guesses."""

    def clean(self) -> dict[str, Any]:
        assert self.request is not None  # LoginView always builds this form with the request
        username = str(self.data.get("username", ""))
        if login_locked(self.request, username):
            raise ValidationError(LOCKED_MESSAGE, code="throttled")
        try:
            return super().clean()
        except ValidationError:
            login_failed(self.request, username)
            raise


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationForm, AdminAuthenticationForm):
    """The admin login form, refusing to check a password while the login is locked (and,
    as the admin's own form, refusing non-staff users)."""


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login view, answering 429 when the form was refused for being locked."""
    response = admin.site.login(request)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.has_error(NON_FIELD_ERRORS, code="throttled"):
        response.status_code = 429
        response["Retry-After"] = str(WINDOW_SECONDS)
    return response
