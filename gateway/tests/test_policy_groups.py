"""Per-group tool policies: how they combine with the agent's own, their API and admin, and
that the gateway's caches see them change."""

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from audit.models import AuditEvent
from gateway.api.mcp import authenticate
from gateway.models import GroupPolicy
from gateway.services import agent_key_create, agent_policy_set
from gateway.services.catalog import agent_catalog
from gateway.services.group_policy import group_policy_create, group_policy_update
from gateway.services.hotpath import HotPath
from tests.api_fixtures import client_for
from tests.factories import AdminFactory, AgentFactory, GroupFactory, McpServerFactory
from tests.gaps import PERMISSION_JOIN

pytestmark = pytest.mark.django_db

TOOLS = [{"name": "read"}, {"name": "write"}, {"name": "delete"}]


@pytest.fixture
def agent() -> Any:
    McpServerFactory(name="Files", tools=TOOLS)
    return AgentFactory()


def member_of(agent: Any, **policy: Any) -> GroupPolicy:
    group = GroupFactory()
    agent.owner.groups.add(group)
    return group_policy_create(actor=None, group=group, **policy)


def offered(agent: Any) -> list[str]:
    return sorted(agent_catalog(agent=agent).routes)


def test_a_group_deny_hides_the_tool_from_its_members_agents(agent):
    member_of(agent, deny=["*__delete"])
    catalog = agent_catalog(agent=agent)
    assert sorted(catalog.routes) == ["mcp__files__read", "mcp__files__write"]
    assert "policy of group" in catalog.hidden["mcp__files__delete"]


def test_a_group_policy_applies_only_to_agents_of_its_members(agent):
    group_policy_create(actor=None, group=GroupFactory(), deny=["*"])
    assert len(offered(agent)) == 3


def test_the_agents_allow_list_cannot_widen_the_groups(agent):
    member_of(agent, allow=["*__read"])
    agent_policy_set(actor=None, agent=agent, changes={"allow": ["*__read", "*__write"]})
    assert offered(agent) == ["mcp__files__read"]


def test_every_allow_list_must_match_and_any_deny_wins(agent):
    member_of(agent, allow=["*__read", "*__write"])
    member_of(agent, deny=["*__write"])
    agent_policy_set(actor=None, agent=agent, changes={"allow": ["mcp__files__*"]})
    assert offered(agent) == ["mcp__files__read"]


def test_a_group_with_only_a_deny_list_restricts_nothing_else(agent):
    member_of(agent, allow=[], deny=[])
    assert len(offered(agent)) == 3


# --- The hot path sees group policy and membership changes at the next request ---------


@pytest.fixture
def hot(agent: Any) -> tuple[HotPath, str]:
    raw = agent_key_create(actor=None, agent=agent, name="k")[1]
    return HotPath(authenticate=authenticate), f"Bearer {raw}"


def test_a_group_policy_change_applies_at_once(agent, hot):
    path, bearer = hot
    policy = member_of(agent)
    assert len(path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes) == 3
    group_policy_update(actor=None, policy=policy, changes={"deny": ["*__write"]})
    view = path.admit(authorization=bearer, agent_id=agent.pk)
    assert "mcp__files__write" not in view.catalog.routes


def test_joining_and_leaving_a_restricted_group_applies_at_once(agent, hot):
    path, bearer = hot
    group = GroupFactory()
    group_policy_create(actor=None, group=group, allow=["*__read"])
    assert len(path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes) == 3
    agent.owner.groups.add(group)
    assert list(path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes) == [
        "mcp__files__read"
    ]
    agent.owner.groups.remove(group)
    assert len(path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes) == 3


def test_a_deleted_group_policy_applies_at_once(agent, hot):
    path, bearer = hot
    policy = member_of(agent, deny=["*"])
    assert path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes == {}
    policy.delete()
    assert len(path.admit(authorization=bearer, agent_id=agent.pk).catalog.routes) == 3


# --- API: /api/v1/gateway/group-policies ------------------------------------------------

URL = "/api/v1/gateway/group-policies"


def with_perms(*codenames: str) -> User:
    user = User.objects.create_user(username=f"u-{'-'.join(codenames) or 'none'}", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # fresh instance: no stale permission cache


def test_an_administrator_creates_reads_changes_and_deletes_a_group_policy(admin_api):
    group = GroupFactory()
    created = admin_api.post(URL, {"group_id": str(group.pk), "deny": ["*__delete"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["group_id"], body["group_name"], body["allow"], body["deny"]) == (
        str(group.pk), group.name, [], ["*__delete"])  # fmt: skip
    url = f"{URL}/{body['id']}"
    assert admin_api.get(URL).json()["group_policies"][0]["id"] == body["id"]
    changed = admin_api.patch(url, {"allow": ["*__read"]}, format="json")
    assert changed.json()["allow"] == ["*__read"] and changed.json()["deny"] == ["*__delete"]
    assert admin_api.delete(url).status_code == 204
    assert admin_api.get(url).status_code == 404
    actions = AuditEvent.objects.filter(entity_type="group_policy").values_list("action", flat=True)
    assert sorted(actions) == ["create", "delete", "update"]


@pytest.mark.parametrize(
    "body",
    [
        {"deny": ["*"]},  # no group
        {"group_id": "999999"},  # no such group
        {"group_id": "not-an-id"},
        {"group_id": "{group}", "allow": "*"},  # not a list
        {"group_id": "{group}", "deny": [""]},  # an empty pattern
        {"group_id": "{group}", "deny": ["x"] * 101},  # too many
    ],
)
def test_bad_input_is_a_validation_error(admin_api, body):
    group = GroupFactory()
    body = {k: str(group.pk) if v == "{group}" else v for k, v in body.items()}
    response = admin_api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "validation_error" and response.json()["message"]
    assert not GroupPolicy.objects.exists()


def test_a_second_policy_for_the_same_group_is_a_validation_error(admin_api):
    group = GroupFactory()
    group_policy_create(actor=None, group=group, deny=["*"])
    response = admin_api.post(URL, {"group_id": str(group.pk)}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "validation_error"


def test_staff_status_alone_grants_nothing():
    policy = group_policy_create(actor=None, group=GroupFactory(), deny=["*"])
    api = client_for(with_perms())
    assert api.get(URL).status_code == 403
    assert api.get(f"{URL}/{policy.pk}").status_code == 403
    assert api.post(URL, {"group_id": str(GroupFactory().pk)}, format="json").status_code == 403
    assert api.delete(f"{URL}/{policy.pk}").status_code == 403
    assert GroupPolicy.objects.count() == 1


@PERMISSION_JOIN
def test_the_model_permissions_decide_each_action():
    policy = group_policy_create(actor=None, group=GroupFactory(), deny=["*"])
    reader = client_for(with_perms("view_grouppolicy"))
    assert reader.get(URL).json()["pagination"]["total"] == 1
    assert reader.patch(f"{URL}/{policy.pk}", {"deny": []}, format="json").status_code == 403
    editor = client_for(with_perms("view_grouppolicy", "change_grouppolicy"))
    assert editor.patch(f"{URL}/{policy.pk}", {"deny": []}, format="json").status_code == 200
    assert editor.delete(f"{URL}/{policy.pk}").status_code == 403
    assert GroupPolicy.objects.get().deny == []


def test_an_unknown_policy_is_404(admin_api):
    assert admin_api.get(f"{URL}/999999").status_code == 404
    assert admin_api.patch(f"{URL}/999999", {"deny": []}, format="json").status_code == 404


# --- The admin ---------------------------------------------------------------------------


def _console() -> Client:
    client = Client()
    client.force_login(AdminFactory())
    return client


def test_the_admin_creates_and_changes_a_group_policy_through_the_services():
    group = GroupFactory()
    console = _console()
    added = console.post("/admin/gateway/grouppolicy/add/",
                         {"group": group.pk, "allow": "[]", "deny": '["*__delete"]'})  # fmt: skip
    assert added.status_code == 302, added.content.decode()[:2000]
    policy = GroupPolicy.objects.get()
    changed = console.post(f"/admin/gateway/grouppolicy/{policy.pk}/change/",
                           {"allow": '["*__read"]', "deny": '["*__delete"]'})  # fmt: skip
    assert changed.status_code == 302
    policy.refresh_from_db()
    assert (policy.group, policy.allow) == (group, ["*__read"])
    update = AuditEvent.objects.get(entity_type="group_policy", action="update")
    assert update.changes["allow"] == {"old": [], "new": ["*__read"]}


def test_the_admin_shows_a_bad_pattern_list_as_a_form_error():
    response = _console().post("/admin/gateway/grouppolicy/add/",
                               {"group": GroupFactory().pk, "allow": '[""]', "deny": "[]"})  # fmt: skip
    assert response.status_code == 200
    assert not GroupPolicy.objects.exists()
