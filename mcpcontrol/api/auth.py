"""POST /api/v1/auth/token and /auth/token/refresh: JWT pairs carrying the role's scopes."""

from typing import Any

from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from mcpcontrol.api.permissions import role_scopes
from mcpcontrol.api.throttling import TokenGenerationThrottle


class ScopedTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> Token:
        token = super().get_token(user)
        token["scope"] = " ".join(sorted(role_scopes(user)))
        return token


class ScopedTokenObtainPairView(TokenObtainPairView):
    serializer_class = ScopedTokenObtainPairSerializer
    throttle_classes = (TokenGenerationThrottle,)


class ScopedTokenRefreshView(TokenRefreshView):
    throttle_classes = (TokenGenerationThrottle,)
