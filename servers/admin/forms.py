"""The console's server and agent-credential forms.

Secrets are write-only here: password inputs that are never pre-filled, an empty input
keeps what is stored, and the page only says whether something is stored. env and headers
work the same way: JSON inputs that start empty, next to the list of stored names. OAuth
settings are separate inputs written into the server's one `oauth` document.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError

from audit.services import REDACTED
from servers import services
from servers.credential_port import credentials
from servers.models import AgentConnection, McpServer

# Typed with their model for mypy; Django's form classes are not subscriptable at run time.
if TYPE_CHECKING:
    _McpServerForm = forms.ModelForm[McpServer]
    _AgentConnectionForm = forms.ModelForm[AgentConnection]
else:
    _McpServerForm = _AgentConnectionForm = forms.ModelForm

# The OAuth settings an operator edits here (all of them: the API's `oauth` object).
OAUTH_INPUTS = {
    "authorization_url": "Authorization URL", "token_url": "Token URL",
    "registration_endpoint": "Registration URL (RFC 7591)",
    "revocation_endpoint": "Revocation URL (RFC 7009)", "client_id": "Client id",
    "scope": "Scopes (space-separated)", "redirect_uri": "Redirect URI",
    "token_variable": "Variable that receives the access token (stdio servers)",
}  # fmt: skip


def secret_input(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored value.",
    )


class _WriteOnlyTextarea(forms.Textarea):
    def format_value(self, value: Any) -> None:
        return None  # like PasswordInput(render_value=False): never echo a secret back


def _secret_map_input(label: str) -> forms.JSONField:
    return forms.JSONField(
        label=label,
        required=False,
        widget=_WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=(
            "Write-only JSON object of names to values. Leave empty to keep the stored ones; "
            f'"{REDACTED}" as a value keeps that name\'s stored value; {{}} removes them all.'
        ),
    )


class McpServerForm(_McpServerForm):
    # Each input writes the model field of the same name without the "_input" suffix.
    auth_secret_input = secret_input("Token or API key")
    oauth_client_secret_input = secret_input("OAuth client secret")
    env_input = _secret_map_input("Environment")
    headers_input = _secret_map_input("Headers")
    oauth_grant_type = forms.ChoiceField(
        label="OAuth grant", choices=McpServer.OAuthGrant.choices, required=False
    )
    oauth_authorization_url = forms.CharField(
        label=OAUTH_INPUTS["authorization_url"], required=False
    )
    oauth_token_url = forms.CharField(label=OAUTH_INPUTS["token_url"], required=False)
    oauth_registration_endpoint = forms.CharField(
        label=OAUTH_INPUTS["registration_endpoint"], required=False
    )
    oauth_revocation_endpoint = forms.CharField(
        label=OAUTH_INPUTS["revocation_endpoint"], required=False
    )
    oauth_client_id = forms.CharField(label=OAUTH_INPUTS["client_id"], required=False)
    oauth_scope = forms.CharField(label=OAUTH_INPUTS["scope"], required=False)
    oauth_redirect_uri = forms.CharField(label=OAUTH_INPUTS["redirect_uri"], required=False)
    oauth_token_variable = forms.CharField(label=OAUTH_INPUTS["token_variable"], required=False)
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    SECRET_MAP_INPUTS = ("env_input", "headers_input")

    class Meta:
        model = McpServer
        # Everything an operator edits; runtime fields belong to the health engine.
        # env, headers and the client secret are written by their write-only inputs; the
        # OAuth document by the inputs below. exclude is deliberate (ruff DJ006 cannot see
        # ModelForm behind the typing alias).
        exclude = (*services.RUNTIME_FIELDS, *McpServer.SECRET_FIELDS, "oauth")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A read-only page (view permission only) builds this form without its inputs.
        config, fields = self.instance.oauth or {}, self.fields
        for key in OAUTH_INPUTS:
            if f"oauth_{key}" in fields:
                fields[f"oauth_{key}"].initial = config.get(key, "")
        if "oauth_grant_type" in fields:
            fields["oauth_grant_type"].initial = config.get("grant_type", "authorization_code")
        if "path" in fields:
            fields["path"].required = False
        if self.instance.pk and "expected_version" in fields:
            fields["expected_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("oauth_headers", "catalog", "custom_user_vars", "mcp_options"):
            if name in self.fields and cleaned.get(name) is None:
                cleaned[name] = {}  # an empty JSON input means an empty object
        expected = cleaned.get("expected_version")
        if self.instance.pk and expected is not None:
            current = McpServer.objects.filter(pk=self.instance.pk).values_list(
                "version", flat=True
            )
            if current.first() != expected:
                raise ValidationError(
                    "This server was changed by someone else since you opened it. Reload the page."
                )
        if not self.errors:
            self._check_as_saved()
        return cleaned

    # The write-only inputs reach the model only at save: check the server as it will be
    # saved now, so a refusal is a form error, never an error page.
    _INPUT_OF = {"env": "env_input", "headers": "headers_input",
                 "oauth_client_secret": "oauth_client_secret_input"}  # fmt: skip

    def _check_as_saved(self) -> None:
        if self.instance.pk:
            server = McpServer.objects.get(pk=self.instance.pk)
            self._report(lambda: services.server_update_preview(
                server=server, changes=self.service_changes()))  # fmt: skip
        else:
            server = McpServer(**self.new_server_fields())
            server.path = server.path or "/" + server.effective_alias
            self._report(server.full_clean)
        secret = self.cleaned_data.get("auth_secret_input") or None
        self._report(lambda: credentials().check_secret(server=server, secret=secret))

    def _report(self, check: Any) -> None:
        """Run a model-level check; its errors become errors of the inputs that caused them."""
        try:
            check()
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                field = (
                    "auth_secret_input" if name == "auth_token" else self._INPUT_OF.get(name, name)
                )
                self.add_error(field if field in self.fields else None, messages)

    def _clean_secret_map(self, field: str) -> dict[str, str] | None:
        value = self.cleaned_data.get(f"{field}_input")
        if value is None:
            return None  # empty input: keep what is stored
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValidationError("Enter a JSON object of string values.")
        try:
            changes = services.server_secret_maps_resolve(
                server=self.instance if self.instance.pk else None, changes={field: value}
            )
        except ValidationError as exc:
            raise ValidationError(exc.message_dict[field]) from None
        resolved: dict[str, str] | None = changes[field]
        return resolved

    def clean_env_input(self) -> dict[str, str] | None:
        return self._clean_secret_map("env")

    def clean_headers_input(self) -> dict[str, str] | None:
        return self._clean_secret_map("headers")

    def oauth_document(self) -> dict[str, Any]:
        """The OAuth settings after this form: its inputs over what else is stored."""
        config = dict(self.instance.oauth or {})
        for key in OAUTH_INPUTS:
            value = self.cleaned_data.get(f"oauth_{key}") or ""
            if value:
                config[key] = value
            else:
                config.pop(key, None)
        config["grant_type"] = self.cleaned_data.get("oauth_grant_type") or "authorization_code"
        if config["grant_type"] == "authorization_code":
            del config["grant_type"]  # the default: not stored
        return config

    def service_changes(self) -> dict[str, Any]:
        """The model field values this form changes (for the registry services)."""
        model_fields = {f.name for f in McpServer._meta.get_fields()}
        changed = [n for n in self.changed_data if n in model_fields]
        values = {name: self.cleaned_data[name] for name in changed}
        if self.cleaned_data.get("oauth_client_secret_input"):
            values["oauth_client_secret"] = self.cleaned_data["oauth_client_secret_input"]
        for name in self.SECRET_MAP_INPUTS:
            if self.cleaned_data.get(name) is not None:
                values[name.removesuffix("_input")] = self.cleaned_data[name]
        oauth = self.oauth_document()
        if oauth != (self.instance.oauth or {}):
            values["oauth"] = oauth
        return values

    def new_server_fields(self) -> dict[str, Any]:
        """Every model field value of a new server."""
        names = {f.name for f in McpServer._meta.concrete_fields}
        fields = {n: v for n, v in self.cleaned_data.items() if n in names}
        return {**fields, **self.service_changes()}


class AgentConnectionForm(_AgentConnectionForm):
    access_token_input = secret_input("Access token or API key")
    refresh_token_input = secret_input("Refresh token")
    expires_at = forms.DateTimeField(required=False, help_text="OAuth tokens only.")

    class Meta:
        model = AgentConnection
        fields = ("agent", "server")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance.pk and not cleaned.get("access_token_input"):
            raise ValidationError({"access_token_input": "A new connection needs a credential."})
        return cleaned
