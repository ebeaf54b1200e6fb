"""/api/v1/tokens: a user's stored tokens, and scoped JWTs for API clients."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from credentials import services as credential_services
from mcpcontrol.api.errors import Conflict
from mcpcontrol.api.jwt import jwt_issue
from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import READ_TOKENS, WRITE_TOKENS, HasScope, request_scopes
from mcpcontrol.api.schema import TokenGeneratedSerializer, errors
from mcpcontrol.api.throttling import TokenGenerationThrottle, WritesThrottle
from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.ids import ID_PATTERN
from tokens import services
from tokens.api import grants
from tokens.api.serializers import (
    TokenDetailSerializer,
    TokenGenerateSerializer,
    TokenRenewedSerializer,
    TokenRenewSerializer,
    TokenSerializer,
    TokenWriteSerializer,
)
from tokens.filtersets import TokenFilterSet
from tokens.models import Token


class TokenViewSet(viewsets.GenericViewSet[Token]):
    serializer_class = TokenSerializer
    filterset_class = TokenFilterSet
    pagination_class = PagePagination.of("tokens", "nested", per_page=50)
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_TOKENS, WRITE_TOKENS
    ordering_fields = ("created_at", "expires_at")
    # A vault token's number, or "grant-<n>" for an upstream credential (tokens.api.grants).
    lookup_value_regex = rf"(?:grant-)?{ID_PATTERN}"

    def get_queryset(self) -> QuerySet[Token]:
        # Owner only, admins included: another user's token is 404.
        return Token.objects.for_user(self.request.user).order_by("-created_at", "-id")

    def get_live(self) -> Token:
        token = self.get_object()
        if token.is_expired:
            raise NotFound("Token not found or expired")
        return token

    def get_object(self) -> Token:
        if self.kwargs.get("pk", "").startswith(grants.PREFIX):
            # A grant is read here but renewed and dropped where it lives.
            if grants.grant_of(self.request.user, self.kwargs["pk"]) is None:
                raise NotFound("Token not found")
            raise Conflict(
                "This token belongs to a server connection: reconnect or disconnect the server "
                "(/api/v1/servers/{id}/oauth/...) to renew or drop it.",
                code="managed_by_connection",
            )
        return super().get_object()

    @extend_schema(
        operation_id="tokens_list",
        responses={200: TokenSerializer(many=True), **errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        """The vault's tokens and the user's upstream credentials, newest first."""
        filterset = TokenFilterSet(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        items = [
            *TokenSerializer(filterset.qs, many=True).data,
            *grants.entries(request.user, type=filterset.form.cleaned_data.get("type") or None,
                            ident=filterset.form.cleaned_data.get("identifier") or None),
        ]  # fmt: skip
        items.sort(key=lambda item: str(item["created_at"]), reverse=True)
        return self.get_paginated_response(self.paginate_queryset(items))

    @extend_schema(
        request=TokenWriteSerializer, responses={201: TokenSerializer, **errors(400, 401, 403, 429)}
    )
    def create(self, request: Request) -> Response:
        serializer = TokenWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = services.token_store(
            actor=request.user, user=request.user, **serializer.validated_data
        )
        return Response(TokenSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TokenDetailSerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        if pk.startswith(grants.PREFIX):
            return self._retrieve_grant(request, pk)
        token = self.get_live()
        context: dict[str, str | None]
        try:
            context = {"token_value": services.token_reveal(actor=request.user, token=token)}
        except DecryptionError as exc:
            # This row only: the value is reported unreadable, never a 500 (docs/security.md).
            context = {"token_value": None, "error": str(exc)}
        data = TokenDetailSerializer(token, context=context).data
        return Response(data, headers={"Cache-Control": "no-store"})

    def _retrieve_grant(self, request: Request, pk: str) -> Response:
        grant = grants.grant_of(request.user, pk)
        if grant is None or grant.expired:
            raise NotFound("Token not found or expired")
        try:
            value: str | None = credential_services.grant_reveal(actor=request.user, grant=grant)
            error = None
        except DecryptionError as exc:
            value, error = None, str(exc)
        body = {**grants.entry(grant), "user_id": str(request.user.pk), "token": value,
                "error": error}  # fmt: skip
        return Response(body, headers={"Cache-Control": "no-store"})

    @extend_schema(responses={204: None, **errors(401, 403, 404, 409, 429)})
    def destroy(self, request: Request, pk: str) -> Response:
        services.token_delete(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=TokenRenewSerializer,
        responses={200: TokenRenewedSerializer, **errors(400, 401, 403, 404, 409, 429)},
    )
    @action(detail=True, methods=["put"])
    def refresh(self, request: Request, pk: str) -> Response:
        token = self.get_object()
        serializer = TokenRenewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token = services.token_renew(
            actor=request.user, token=token, new_token=data["new_access_token"],
            new_expires_at=data["new_expires_at"],
            new_refresh_token=data.get("new_refresh_token") or None,
        )  # fmt: skip
        # Seed 004 answers with the new token: the one the caller just sent, nothing read back.
        body = {**TokenSerializer(token).data, "token": data["new_access_token"]}
        return Response(body, headers={"Cache-Control": "no-store"})

    @extend_schema(
        request=TokenGenerateSerializer,
        responses={200: TokenGeneratedSerializer, **errors(400, 401, 403, 429)},
    )
    @action(detail=False, methods=["post"], throttle_classes=[TokenGenerationThrottle])
    def generate(self, request: Request) -> Response:
        """A JWT pair for the caller with at most the scopes the caller itself holds."""
        serializer = TokenGenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        wanted = set(data["requested_scopes"])
        excess = wanted - request_scopes(request)
        if excess:
            raise PermissionDenied(f"You may not grant: {' '.join(sorted(excess))}.")
        tokens = jwt_issue(
            actor=request.user, user=request.user, scopes=sorted(wanted),
            expires_in_hours=data["expires_in_hours"], description=data.get("description", ""),
        )  # fmt: skip
        return Response({"success": True, "tokens": tokens})
