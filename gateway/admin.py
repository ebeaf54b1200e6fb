from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway import services
from gateway.models import AgentKey, AgentPolicy, GroupPolicy, ToolCall
from gateway.services.group_policy import (
    group_policy_create,
    group_policy_delete,
    group_policy_update,
)
from gateway.services.policy import check_patterns

if TYPE_CHECKING:
    _KeyAdmin = admin.ModelAdmin[AgentKey]
    _PolicyAdmin = admin.ModelAdmin[AgentPolicy]
    _CallAdmin = admin.ModelAdmin[ToolCall]
    _GroupPolicyAdmin = admin.ModelAdmin[GroupPolicy]
    _GroupPolicyForm = forms.ModelForm[GroupPolicy]
else:
    _GroupPolicyForm = forms.ModelForm
    _KeyAdmin = _PolicyAdmin = _CallAdmin = _GroupPolicyAdmin = admin.ModelAdmin


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
    fields = ("agent", "naming", "allow", "deny", "rate_limit_per_minute")

    def save_model(self, request: HttpRequest, obj: AgentPolicy, form: Any, change: bool) -> None:
        # Through the service, so the change is validated and audited like the API's.
        names = ("naming", "allow", "deny", "rate_limit_per_minute")
        changes = {name: form.cleaned_data[name] for name in names}
        services.agent_policy_set(actor=request.user, agent=obj.agent, changes=changes)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentPolicy]:
        qs = AgentPolicy.objects.select_related("agent")
        return qs if request.user.is_superuser else qs.filter(agent__owner_id=request.user.pk)


class GroupPolicyForm(_GroupPolicyForm):
    """The service's pattern check as form errors (a bad list is a message, not a 500)."""

    class Meta:
        model = GroupPolicy
        fields = ("group", "allow", "deny")

    def clean_allow(self) -> list[str]:
        return self._patterns("allow")

    def clean_deny(self) -> list[str]:
        return self._patterns("deny")

    def _patterns(self, name: str) -> list[str]:
        try:
            return check_patterns(name, self.cleaned_data.get(name))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict[name]) from exc


@admin.register(GroupPolicy)
class GroupPolicyAdmin(_GroupPolicyAdmin):
    """Allow/deny globs for every agent of a group's members (docs/gateway.md, "Policy").
    Saving and deleting go through the services: validated and audited like the API's."""

    list_display = ("group", "allow", "deny", "updated_at")
    fields = ("group", "allow", "deny")
    form = GroupPolicyForm

    def get_queryset(self, request: HttpRequest) -> QuerySet[GroupPolicy]:
        return GroupPolicy.objects.for_user(request.user).select_related("group")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("group",) if obj is not None else ()  # one policy per group, for good

    def save_model(self, request: HttpRequest, obj: GroupPolicy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in ("allow", "deny")}
            # The form has already set the new values on obj: the audit needs the stored ones.
            stored = GroupPolicy.objects.get(pk=obj.pk)
            saved = group_policy_update(actor=request.user, policy=stored, changes=changes)
        else:
            saved = group_policy_create(actor=request.user, group=data["group"],
                                        allow=data["allow"], deny=data["deny"])  # fmt: skip
        obj.pk = saved.pk  # the admin's "added" message and redirect need it

    def delete_model(self, request: HttpRequest, obj: GroupPolicy) -> None:
        group_policy_delete(actor=request.user, policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GroupPolicy]) -> None:
        for policy in queryset:
            group_policy_delete(actor=request.user, policy=policy)


@admin.register(ToolCall)
class ToolCallAdmin(_CallAdmin):
    list_display = ("created_at", "agent", "server", "tool", "outcome", "duration_ms")
    list_filter = ("outcome",)
    readonly_fields = ("agent", "server", "tool", "duration_ms", "outcome", "argument_bytes",
                       "arguments", "created_at")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
