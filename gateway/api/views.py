"""/api/v1/agents/{id}/keys and /gateway-policy: governed like the agent itself (visible
through Agent.objects.for_user, so another user's agent is 404; the servers scopes).
/api/v1/gateway/group-policies: an administrator's, by the gateway.*_grouppolicy permissions."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import DjangoModelPermissions, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from gateway import services
from gateway.api.serializers import (
    AgentKeyCreatedSerializer,
    AgentKeyCreateSerializer,
    AgentKeySerializer,
    AgentPolicySerializer,
    GroupPolicySerializer,
)
from gateway.models import AgentKey, GroupPolicy
from gateway.services.group_policy import (
    group_policy_create,
    group_policy_delete,
    group_policy_update,
)
from mcpcontrol.api.pagination import PagePagination
from mcpcontrol.api.permissions import (
    READ_SERVERS,
    WRITE_SERVERS,
    HasDjangoPermission,
    HasScope,
)
from mcpcontrol.api.schema import errors
from mcpcontrol.api.throttling import WritesThrottle
from servers.models import Agent


class _AgentScoped(viewsets.GenericViewSet[Any]):
    permission_classes = (IsAuthenticated, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS
    filter_backends = ()
    # No OPTIONS metadata: DRF's would call get_object() on these nested routes (405 instead).
    metadata_class = None

    def agent(self) -> Agent:
        visible = Agent.objects.for_user(self.request.user)
        return get_object_or_404(visible, pk=self.kwargs["agent_id"])


class AgentKeyViewSet(_AgentScoped):
    serializer_class = AgentKeySerializer
    pagination_class = PagePagination.of("keys", "nested")

    def get_queryset(self) -> QuerySet[AgentKey]:
        return AgentKey.objects.filter(agent=self.agent()).order_by("-created_at", "-id")

    @extend_schema(responses={200: AgentKeySerializer(many=True), **errors(400, 401, 403, 404)})
    def list(self, request: Request, agent_id: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AgentKeySerializer(page, many=True).data)

    @extend_schema(
        request=AgentKeyCreateSerializer,
        responses={201: AgentKeyCreatedSerializer, **errors(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request, agent_id: str) -> Response:
        agent = self.agent()
        serializer = AgentKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = services.agent_key_create(actor=request.user, agent=agent,
                                             **serializer.validated_data)  # fmt: skip
        body = {**AgentKeySerializer(key).data, "key": raw}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(responses={200: AgentKeySerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, agent_id: str, pk: str) -> Response:
        return Response(AgentKeySerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    @extend_schema(responses={200: AgentKeySerializer, **errors(401, 403, 404, 429)})
    def destroy(self, request: Request, agent_id: str, pk: str) -> Response:
        """Revoke the key (kept, marked revoked, for the record); 200 with its new state."""
        key = get_object_or_404(self.get_queryset(), pk=pk)
        key = services.agent_key_revoke(actor=request.user, key=key)
        return Response(AgentKeySerializer(key).data)


class AgentPolicyViewSet(_AgentScoped):
    serializer_class = AgentPolicySerializer

    @extend_schema(responses={200: AgentPolicySerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, agent_id: str) -> Response:
        policy = services.agent_policy_get(agent=self.agent())
        return Response(AgentPolicySerializer(policy).data)

    @extend_schema(
        request=AgentPolicySerializer,
        responses={200: AgentPolicySerializer, **errors(400, 401, 403, 404, 429)},
    )
    def partial_update(self, request: Request, agent_id: str) -> Response:
        agent = self.agent()
        serializer = AgentPolicySerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        limits = "rate_limit_per_minute" in serializer.validated_data
        if limits and not request.user.has_perm("gateway.change_agentpolicy"):
            # The limit protects the upstreams from the agent: its owner must not lift it.
            raise PermissionDenied("setting rate_limit_per_minute needs the "
                                   "gateway.change_agentpolicy permission")  # fmt: skip
        policy = services.agent_policy_set(
            actor=request.user, agent=agent, changes=dict(serializer.validated_data)
        )
        return Response(AgentPolicySerializer(policy).data)


class GroupPolicyViewSet(viewsets.GenericViewSet[GroupPolicy]):
    """Reads need gateway.view_grouppolicy; writes the add/change/delete permission (Django's
    model permissions, given through admin Groups, as in the console)."""

    serializer_class = GroupPolicySerializer
    pagination_class = PagePagination.of("group_policies", "nested")
    permission_classes = (IsAuthenticated, HasDjangoPermission, DjangoModelPermissions, HasScope)
    throttle_classes = (WritesThrottle,)
    read_scope, write_scope = READ_SERVERS, WRITE_SERVERS
    read_permission = "gateway.view_grouppolicy"
    filter_backends = ()
    metadata_class = None

    def get_queryset(self) -> QuerySet[GroupPolicy]:
        return GroupPolicy.objects.for_user(self.request.user).select_related("group")

    @extend_schema(responses={200: GroupPolicySerializer(many=True), **errors(400, 401, 403)})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset().order_by("id"))
        return self.get_paginated_response(GroupPolicySerializer(page, many=True).data)

    @extend_schema(responses={201: GroupPolicySerializer, **errors(400, 401, 403, 429)})
    def create(self, request: Request) -> Response:
        serializer = GroupPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        policy = group_policy_create(actor=request.user, group=data["group_id"],
                                     allow=data.get("allow"), deny=data.get("deny"))  # fmt: skip
        return Response(GroupPolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: GroupPolicySerializer, **errors(401, 403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(GroupPolicySerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    @extend_schema(responses={200: GroupPolicySerializer, **errors(400, 401, 403, 404, 429)})
    def partial_update(self, request: Request, pk: str) -> Response:
        policy = get_object_or_404(self.get_queryset(), pk=pk)
        serializer = GroupPolicySerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k in ("allow", "deny")}
        policy = group_policy_update(actor=request.user, policy=policy, changes=changes)
        return Response(GroupPolicySerializer(policy).data)

    @extend_schema(responses={204: None, **errors(401, 403, 404, 429)})
    def destroy(self, request: Request, pk: str) -> Response:
        group_policy_delete(
            actor=request.user, policy=get_object_or_404(self.get_queryset(), pk=pk)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
