from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from tokens import services
from tokens.models import Token

UNREADABLE = "unreadable: cannot be decrypted (MCPCONTROL_TOKEN_CODEC, keys)"

# Typed with their model for mypy; Django's admin and form classes are not subscriptable at
# run time, so the plain classes are used there.
if TYPE_CHECKING:
    _TokenForm = forms.ModelForm[Token]
    _TokenAdmin = admin.ModelAdmin[Token]
else:
    _TokenForm, _TokenAdmin = forms.ModelForm, admin.ModelAdmin


class TokenForm(_TokenForm):
    token_input = forms.CharField(
        label="Token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored value.",
    )

    class Meta:
        model = Token
        fields = ("user", "email", "type", "identifier", "expires_at", "metadata")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance.pk and not cleaned.get("token_input"):
            raise ValidationError({"token_input": "A new token needs a value."})
        return cleaned


@admin.register(Token)
class TokenAdmin(_TokenAdmin):
    """Operators see token metadata only; the value is write-only here."""

    form = TokenForm
    list_display = ("identifier", "type", "user", "expires_at", "is_expired", "value", "created_at")
    list_filter = ("type",)
    search_fields = ("identifier", "user__username", "email")
    list_select_related = ("user",)
    readonly_fields = ("value", "created_at", "updated_at")

    @admin.display(boolean=True, description="Expired")
    def is_expired(self, obj: Token) -> bool:
        return obj.is_expired

    @admin.display(description="Value")
    def value(self, obj: Token) -> str:
        # Never the value itself; whether it opens, so a row written in a format the codec
        # does not read shows here instead of failing a reader later.
        if obj.token is None:
            return "—"
        return UNREADABLE if obj.is_unreadable else "stored"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Token]:
        return Token.objects.select_related("user")

    def save_model(self, request: HttpRequest, obj: Token, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fresh = Token.objects.get(pk=obj.pk)
            changes = {name: data[name] for name in form.changed_data if name in form.Meta.fields}
            if changes:
                services.token_update(actor=request.user, token=fresh, changes=changes)
            if data.get("token_input"):
                services.token_renew(
                    actor=request.user, token=fresh, new_token=data["token_input"],
                    new_expires_at=data.get("expires_at"),
                )  # fmt: skip
            return
        saved = services.token_store(
            actor=request.user, user=data["user"], type=data["type"], identifier=data["identifier"],
            token=data["token_input"], expires_at=data.get("expires_at"),
            metadata=data.get("metadata") or {}, email=data.get("email", ""),
        )  # fmt: skip
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Token) -> None:
        services.token_delete(actor=request.user, token=obj)
