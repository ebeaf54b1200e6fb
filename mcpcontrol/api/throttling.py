"""Per-user throttles. Rates are read on every request so settings overrides take effect.

Anonymous clients are told apart by client_ip: X-Forwarded-For counts only as far as
MCPCONTROL_TRUSTED_PROXIES wrote it, so a made-up header does not make a new client.
"""

from typing import Any, cast

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from mcpcontrol.lib.clientip import client_ip


class _SettingsRateThrottle(UserRateThrottle):
    def get_rate(self) -> str | None:
        # drf-stubs types the rates as numbers; they are "N/period" strings.
        rates = cast("dict[str | None, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope)

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or ""


class WritesThrottle(_SettingsRateThrottle):
    """Limits unsafe requests per user; reads are not throttled."""

    scope = "writes"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class TokenGenerationThrottle(_SettingsRateThrottle):
    scope = "token_generation"
