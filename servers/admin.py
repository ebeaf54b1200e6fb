"""The operator console for servers, agents and per-agent credentials.

Secrets are write-only here: the forms have password inputs that are never pre-filled, an
empty input keeps the stored secret, and the pages only say whether one is stored. env and
headers work the same way: JSON inputs that start empty, next to the list of stored names.
Saves go through the services, so the admin audits and version-checks exactly like the API.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import REDACTED
from servers import services
from servers.admin_health import HealthAdminMixin
from servers.admin_oauth import OAuthAdminMixin
from servers.models import Agent, AgentConnection, McpServer, default_alias

# Typed with their model for mypy; Django's admin and form classes are not subscriptable at
# run time, so the plain classes are used there.
if TYPE_CHECKING:
    _McpServerForm = forms.ModelForm[McpServer]
    _McpServerAdmin = admin.ModelAdmin[McpServer]
    _AgentConnectionInline = admin.TabularInline[AgentConnection, Agent]
    _AgentAdmin = admin.ModelAdmin[Agent]
    _AgentConnectionForm = forms.ModelForm[AgentConnection]
    _AgentConnectionAdmin = admin.ModelAdmin[AgentConnection]
else:
    _McpServerForm = _AgentConnectionForm = forms.ModelForm
    _McpServerAdmin = _AgentAdmin = _AgentConnectionAdmin = admin.ModelAdmin
    _AgentConnectionInline = admin.TabularInline


def _secret_input(label: str) -> forms.CharField:
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


def _stored(value: object) -> str:
    return "stored" if value is not None else "—"


class McpServerForm(_McpServerForm):
    # Each input writes the model field of the same name without the "_input" suffix.
    auth_secret_input = _secret_input("Token or API key")
    oauth_client_id_input = _secret_input("OAuth client id")
    oauth_client_secret_input = _secret_input("OAuth client secret")
    env_input = _secret_map_input("Environment")
    headers_input = _secret_map_input("Headers")
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    SECRET_INPUTS = ("auth_secret_input", "oauth_client_id_input", "oauth_client_secret_input")
    SECRET_MAP_INPUTS = ("env_input", "headers_input")

    class Meta:
        model = McpServer
        # Everything an operator edits; runtime fields belong to the health engine.
        # env and headers are not editable model fields: env_input and headers_input write them.
        # exclude is deliberate here (ruff DJ006 cannot see ModelForm behind the typing alias).
        exclude = (*services.RUNTIME_FIELDS, *McpServer.SECRET_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["alias"].required = False
        self.fields["path"].required = False
        if self.instance.pk:
            self.fields["expected_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The same defaults the service applies, so model validation sees a complete row.
        if not cleaned.get("alias") and cleaned.get("name"):
            cleaned["alias"] = default_alias(cleaned["name"])
        if not cleaned.get("path") and cleaned.get("alias"):
            cleaned["path"] = "/" + cleaned["alias"]
        expected = cleaned.get("expected_version")
        if self.instance.pk and expected is not None:
            current = McpServer.objects.filter(pk=self.instance.pk).values_list(
                "version", flat=True
            )
            if current.first() != expected:
                raise ValidationError(
                    "This server was changed by someone else since you opened it. Reload the page."
                )
        return cleaned

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
                server=self.instance, changes={field: value}
            )
        except ValidationError as exc:
            raise ValidationError(exc.message_dict[field]) from None
        resolved: dict[str, str] | None = changes[field]
        return resolved

    def clean_env_input(self) -> dict[str, str] | None:
        return self._clean_secret_map("env")

    def clean_headers_input(self) -> dict[str, str] | None:
        return self._clean_secret_map("headers")

    def service_changes(self) -> dict[str, Any]:
        model_fields = {f.name for f in McpServer._meta.get_fields()}
        changed = [n for n in self.changed_data if n in model_fields]
        values = {name: self.cleaned_data[name] for name in changed}
        for name in self.SECRET_INPUTS:
            if self.cleaned_data.get(name):
                values[name.removesuffix("_input")] = self.cleaned_data[name]
        for name in self.SECRET_MAP_INPUTS:
            if self.cleaned_data.get(name) is not None:
                values[name.removesuffix("_input")] = self.cleaned_data[name]
        return values


@admin.register(McpServer)
class McpServerAdmin(HealthAdminMixin, OAuthAdminMixin, _McpServerAdmin):
    form = McpServerForm
    list_display = (
        "name", "transport_type", "auth_type", "scope", "owner", "status", "is_enabled",
        "health_outcome", "response_time_display", "tool_count", "last_error_display",
    )  # fmt: skip
    list_filter = (
        "scope",
        "status",
        "transport_type",
        "auth_type",
        "is_enabled",
        "credential_mode",
    )
    search_fields = ("name", "alias", "description", "url", "command", "path")
    list_select_related = ("owner", "group")
    readonly_fields = (
        "secrets_stored", "env_names", "headers_names", "status", "version", "protocol_version",
        "tools_last_synced_at", "init_duration_ms", "last_connected_at", "last_checked_at",
        "last_error_at", "error_message", "response_time_ms", "consecutive_failures",
        "oauth_expires_at", "oauth_needs_reauth", "tools_display", "created_by", "created_at", "updated_at",
        "health_outcome", "response_time_display", "tool_count", "last_error_display",
        "oauth_connect_button",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("name", "alias", "description", "tags", "path", "icon_path")}),
        ("Transport", {"fields": (
            "transport_type", "url", "headers_names", "headers_input", "command", "args", "cwd",
            "env_names", "env_input", "stderr",
        )}),
        ("Upstream auth", {"fields": (
            "auth_type", "credential_mode", "header_name", "prefix", "auth_secret_input",
            "probe_agent", "secrets_stored",
        )}),
        ("OAuth", {"fields": (
            "oauth_connect_button", "oauth_grant_type", "oauth_issuer", "oauth_authorization_url", "oauth_token_url",
            "oauth_registration_url", "oauth_revocation_url", "oauth_scopes", "oauth_redirect_uri",
            "oauth_client_id_input", "oauth_client_secret_input", "oauth_token_endpoint_auth_method",
            "oauth_pkce_methods", "oauth_metadata", "oauth_expires_at", "oauth_needs_reauth",
        )}),
        ("Access", {"fields": ("scope", "owner", "group")}),
        ("Options", {"fields": (
            "is_enabled", "startup", "timeout_ms", "init_timeout_ms", "chat_menu",
            "server_instructions", "custom_user_vars", "mcp_options", "expected_version",
        )}),
        ("Runtime", {"fields": (
            "health_outcome", "response_time_display", "tool_count", "last_error_display", "status", "protocol_version", "last_checked_at", "last_connected_at", "last_error_at",
            "error_message", "response_time_ms", "init_duration_ms", "consecutive_failures",
            "tools_last_synced_at", "tools_display", "version", "created_by", "created_at",
            "updated_at",
        )}),
    )  # fmt: skip
    actions = ("check_now", "oauth_discover_action", "enable_servers", "disable_servers")

    def get_queryset(self, request: HttpRequest) -> QuerySet[McpServer]:
        return McpServer.objects.for_user(request.user).select_related("owner", "group")

    @admin.display(description="Tools", ordering="tools")
    def num_tools_display(self, obj: McpServer) -> int:
        return obj.num_tools

    @admin.display(description="Secrets")
    def secrets_stored(self, obj: McpServer) -> str:
        stored = [name for name in McpServer.SECRET_FIELDS if obj.has_secret(name)]
        return ", ".join(stored) + " stored" if stored else "none stored"

    @admin.display(description="Stored environment names")
    def env_names(self, obj: McpServer) -> str:
        return ", ".join(obj.env or {}) or "—"

    @admin.display(description="Stored header names")
    def headers_names(self, obj: McpServer) -> str:
        return ", ".join(obj.headers or {}) or "—"

    @admin.display(description="Discovered tools")
    def tools_display(self, obj: McpServer) -> str:
        return ", ".join(t.get("name", "?") for t in obj.tools or []) or "—"

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        values = form.service_changes()
        try:
            if change:
                fresh = McpServer.objects.get(pk=obj.pk)
                saved = services.server_update(
                    actor=request.user, server=fresh, changes=values,
                    expected_version=form.cleaned_data.get("expected_version"),
                )  # fmt: skip
            else:
                names = {f.name for f in McpServer._meta.concrete_fields}
                fields = {n: v for n, v in form.cleaned_data.items() if n in names} | values
                saved = services.server_register(actor=request.user, **fields)
        except services.VersionConflict:
            self.message_user(
                request, "Not saved: changed by someone else meanwhile.", messages.ERROR
            )
            return
        obj.pk, obj.version = saved.pk, saved.version

    def delete_model(self, request: HttpRequest, obj: McpServer) -> None:
        services.server_delete(actor=request.user, server=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_delete(actor=request.user, server=server)

    @admin.action(description="Enable selected servers", permissions=["change"])
    def enable_servers(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_set_enabled(actor=request.user, server=server, enabled=True)
        self.message_user(request, f"Enabled {queryset.count()} server(s).")

    @admin.action(description="Disable selected servers", permissions=["change"])
    def disable_servers(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_set_enabled(actor=request.user, server=server, enabled=False)
        self.message_user(request, f"Disabled {queryset.count()} server(s).")


class AgentConnectionInline(_AgentConnectionInline):
    model = AgentConnection
    extra = 0
    fields = ("server", "access_stored", "expires_at", "needs_reauth", "updated_at")
    readonly_fields = ("server", "access_stored", "expires_at", "needs_reauth", "updated_at")
    can_delete = False
    show_change_link = True

    @admin.display(description="Credential")
    def access_stored(self, obj: AgentConnection) -> str:
        return _stored(obj.access_token)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(_AgentAdmin):
    list_display = ("name", "owner", "description", "created_at")
    list_filter = ("owner",)
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    inlines = (AgentConnectionInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return Agent.objects.for_user(request.user)

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            services.agent_update(actor=request.user, agent=obj, changes=changes)
        else:
            agent = services.agent_create(
                actor=request.user, owner=obj.owner, name=obj.name, description=obj.description
            )
            obj.pk = agent.pk

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        services.agent_delete(actor=request.user, agent=obj)


class AgentConnectionForm(_AgentConnectionForm):
    access_token_input = _secret_input("Access token or API key")
    refresh_token_input = _secret_input("Refresh token")

    class Meta:
        model = AgentConnection
        fields = ("agent", "server", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance.pk and not cleaned.get("access_token_input"):
            raise ValidationError({"access_token_input": "A new connection needs a credential."})
        return cleaned


@admin.register(AgentConnection)
class AgentConnectionAdmin(_AgentConnectionAdmin):
    form = AgentConnectionForm
    list_display = ("agent", "server", "access_stored", "expires_at", "needs_reauth", "updated_at")
    list_filter = ("needs_reauth", "server__auth_type")
    search_fields = ("agent__name", "server__name")
    list_select_related = ("agent", "server")
    readonly_fields = (
        "access_stored",
        "refresh_stored",
        "needs_reauth",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentConnection]:
        return AgentConnection.objects.filter(
            agent__in=Agent.objects.for_user(request.user)
        ).select_related("agent", "server")

    @admin.display(description="Credential")
    def access_stored(self, obj: AgentConnection) -> str:
        return _stored(obj.access_token)

    @admin.display(description="Refresh token")
    def refresh_stored(self, obj: AgentConnection) -> str:
        return _stored(obj.refresh_token)

    def save_model(
        self, request: HttpRequest, obj: AgentConnection, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        access = data.get("access_token_input") or (
            obj.access_token.reveal() if obj.access_token else ""
        )
        saved = services.connection_set(
            actor=request.user, agent=data["agent"], server=data["server"], access_token=access,
            refresh_token=data.get("refresh_token_input") or None, expires_at=data.get("expires_at"),
        )  # fmt: skip
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: AgentConnection) -> None:
        services.connection_delete(actor=request.user, connection=obj)
