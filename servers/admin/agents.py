"""The console for agents and their own per-server credentials (write-only inputs)."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from servers import services
from servers.admin.forms import AgentConnectionForm
from servers.credential_port import credentials
from servers.models import Agent, AgentConnection

if TYPE_CHECKING:
    _AgentConnectionInline = admin.TabularInline[AgentConnection, Agent]
    _AgentAdmin = admin.ModelAdmin[Agent]
    _AgentConnectionAdmin = admin.ModelAdmin[AgentConnection]
else:
    _AgentAdmin = _AgentConnectionAdmin = admin.ModelAdmin
    _AgentConnectionInline = admin.TabularInline


def credential_state(obj: AgentConnection) -> str:
    """What the console shows of an agent's credential: stored or not, expiry, re-auth."""
    state = credentials().state(server=obj.server, agent=obj.agent)
    if not state.has_secret:
        return "—"
    text = f"{state.kind} stored"
    if state.expires_at is not None:
        text += f", expires {state.expires_at:%Y-%m-%d %H:%M}"
    return text + (", needs re-authorization" if state.needs_reauth else "")


class AgentConnectionInline(_AgentConnectionInline):
    model = AgentConnection
    extra = 0
    fields = ("server", "credential", "updated_at")
    readonly_fields = ("server", "credential", "updated_at")
    can_delete = False
    show_change_link = True

    @admin.display(description="Credential")
    def credential(self, obj: AgentConnection) -> str:
        return credential_state(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AgentAdmin(_AgentAdmin):
    list_display = ("name", "owner", "config_mode", "description", "created_at")
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
                actor=request.user, owner=obj.owner, name=obj.name,
                description=obj.description, config_mode=obj.config_mode,
            )  # fmt: skip
            obj.pk = agent.pk

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        services.agent_delete(actor=request.user, agent=obj)


class AgentConnectionAdmin(_AgentConnectionAdmin):
    form = AgentConnectionForm
    list_display = ("agent", "server", "credential", "updated_at")
    list_filter = ("server__auth_type",)
    search_fields = ("agent__name", "server__name")
    list_select_related = ("agent", "server")
    readonly_fields = ("credential", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentConnection]:
        return AgentConnection.objects.filter(
            agent__in=Agent.objects.for_user(request.user)
        ).select_related("agent", "server")

    @admin.display(description="Credential")
    def credential(self, obj: AgentConnection) -> str:
        return credential_state(obj) if obj.pk else "—"

    def save_model(
        self, request: HttpRequest, obj: AgentConnection, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if not data.get("access_token_input"):
            return  # nothing new to store: the credential stays as it is
        saved = services.connection_set(
            actor=request.user, agent=data["agent"], server=data["server"],
            access_token=data["access_token_input"],
            refresh_token=data.get("refresh_token_input") or None,
            expires_at=data.get("expires_at"),
        )  # fmt: skip
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: AgentConnection) -> None:
        services.connection_delete(actor=request.user, connection=obj)
