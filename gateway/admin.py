from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway import services
from gateway.models import AgentKey, AgentPolicy, ToolCall

if TYPE_CHECKING:
    _KeyAdmin = admin.ModelAdmin[AgentKey]
    _PolicyAdmin = admin.ModelAdmin[AgentPolicy]
    _CallAdmin = admin.ModelAdmin[ToolCall]
else:
    _KeyAdmin = _PolicyAdmin = _CallAdmin = admin.ModelAdmin


@admin.register(AgentKey)
class AgentKeyAdmin(_KeyAdmin):
    """Keys are issued through the API (the raw value is shown once there); the admin lists
    and revokes them and never shows the digest."""

    list_display = ("__str__", "agent", "expires_at", "last_used_at", "revoked_at")
    fields = ("agent", "name", "prefix", "expires_at", "last_used_at", "revoked_at", "created_at")
    readonly_fields = fields
    actions = ("revoke",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentKey]:
        return AgentKey.objects.for_user(request.user).select_related("agent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentKey]) -> None:
        for key in queryset:
            services.agent_key_revoke(actor=request.user, key=key)


@admin.register(AgentPolicy)
class AgentPolicyAdmin(_PolicyAdmin):
    list_display = ("agent", "naming", "updated_at")
    fields = ("agent", "naming", "allow", "deny")

    def save_model(self, request: HttpRequest, obj: AgentPolicy, form: Any, change: bool) -> None:
        # Through the service, so the change is validated and audited like the API's.
        changes = {name: form.cleaned_data[name] for name in ("naming", "allow", "deny")}
        services.agent_policy_set(actor=request.user, agent=obj.agent, changes=changes)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentPolicy]:
        qs = AgentPolicy.objects.select_related("agent")
        return qs if request.user.is_superuser else qs.filter(agent__owner_id=request.user.pk)


@admin.register(ToolCall)
class ToolCallAdmin(_CallAdmin):
    list_display = ("created_at", "agent", "server", "tool", "outcome", "duration_ms")
    list_filter = ("outcome",)
    readonly_fields = ("agent", "server", "tool", "duration_ms", "outcome", "argument_bytes",
                       "created_at")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
