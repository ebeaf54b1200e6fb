"""POST /api/v1/auth/token and /auth/token/refresh: JWT pairs carrying the role's scopes."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from mcpcontrol.api.permissions import role_scopes
from mcpcontrol.api.schema import TokenPairSerializer, errors
from mcpcontrol.api.throttling import TokenGenerationThrottle
from mcpcontrol.lib.loginguard import WINDOW_SECONDS, login_failed, login_locked


class ScopedTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> Token:
        token = super().get_token(user)
        token["scope"] = " ".join(sorted(role_scopes(user)))
        return token

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        """Check the password unless the login is locked; count a failure against both
        the client address and the username, shared with the admin login."""
        request = self.context["request"]
        username = str(attrs.get(self.username_field, ""))
        if login_locked(request, username):
            raise Throttled(wait=WINDOW_SECONDS, detail="Too many failed login attempts.")
        try:
            return super().validate(attrs)
        except AuthenticationFailed:
            login_failed(request, username)
            raise


@extend_schema_view(
    post=extend_schema(responses={200: TokenPairSerializer, **errors(400, 401, 429)})
)
class ScopedTokenObtainPairView(TokenObtainPairView):
    serializer_class = ScopedTokenObtainPairSerializer
    throttle_classes = (TokenGenerationThrottle,)


@extend_schema_view(
    post=extend_schema(responses={200: TokenRefreshSerializer, **errors(400, 401, 429)})
)
class ScopedTokenRefreshView(TokenRefreshView):
    throttle_classes = (TokenGenerationThrottle,)
