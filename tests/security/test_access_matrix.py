"""The access matrix (issue 10, "Figures as tests"): every URL pattern of the URL conf, with
its parameters filled by real objects (the owner's, a stranger's, a group's, an app-wide one),
x every method its view has x every role. Each cell's expected outcome comes from the policy
table below: a cell the policy refuses must not get through (2xx, or a redirect other than to
the login page), and no cell may answer 5xx. A URL the table does not classify fails the test:
declare it.

Run it with `pytest tests/security/test_access_matrix.py -s` to see the figures.
"""

import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.http import HttpResponse

from tests.security.urlconf import Endpoint, endpoints
from tests.security.world import ROLES, World, build_world

pytestmark = pytest.mark.django_db

USERS = frozenset(ROLES) - {"anonymous"}
# Whose rows a write that got through would add or remove (sessions and the like excluded).
COUNTED_APPS = ("servers", "credentials", "tokens", "audit", "auth", "django_celery_beat")
# Who may do what to each object variant (the admin, a superuser, may everything).
# "read" is GET; "use" is acting on one's own behalf on a usable object (variables, OAuth
# connect); "manage" is changing or deleting the object itself.
RIGHTS: dict[str, dict[str, dict[str, frozenset[str]]]] = {
    "server": {
        "read": {"mine": frozenset({"owner"}), "strangers": frozenset(),
                 "group": frozenset({"group_member"}),
                 "app": frozenset({"owner", "other_user", "group_member", "staff_no_perms"})},
        "manage": {"mine": frozenset({"owner"}), "strangers": frozenset(),
                   "group": frozenset(), "app": frozenset()},
    },
    "agent": {"read": {"mine": frozenset({"owner"}), "strangers": frozenset()}},
    "token": {"read": {"mine": frozenset({"owner"}), "strangers": frozenset(),
                       "grant_mine": frozenset({"owner"}), "grant_strangers": frozenset()}},
}  # fmt: skip


@dataclass(frozen=True)
class Policy:
    """Who may get through. `who` for URLs without objects: "anyone", "users" (any signed-in
    user), "staff" (the console's own pages of a staff user), "admin" (a superuser only).
    `params` maps each URL parameter to an object kind; `write` is the right a non-GET needs."""

    who: str = "users"
    params: tuple[tuple[str, str], ...] = ()
    write: str = "manage"


OPEN, USERS_ONLY = Policy("anyone"), Policy("users")
ADMIN_ONLY, CONSOLE_STAFF = Policy("admin"), Policy("staff")
SERVER = Policy(params=(("pk", "server"),))
SERVER_USE = Policy(params=(("pk", "server"),), write="use")
AGENT = Policy(params=(("pk", "agent"),))
TOKEN = Policy(params=(("pk", "token"),))
AGENT_ID = Policy(params=(("agent_id", "agent"),))
AGENT_AND_SERVER = Policy(params=(("agent_id", "agent"), ("server_id", "server")), write="use")
CONNECTION = Policy(params=(("pk", "agent"), ("server_id", "server")), write="use")

# The declared policy. Templates are the URL conf's, with `*` for one path segment; the first
# match wins. A new URL must get a row here (the test says so).
POLICY: list[tuple[str, Policy]] = [
    ("", OPEN),  # redirects to the console
    ("healthz", OPEN), ("readyz", OPEN),
    ("metrics", OPEN),  # its own token / address check (403 otherwise): tests/test_metrics.py
    ("api/schema/", OPEN), ("api/docs/", OPEN), ("api/redoc/", OPEN),
    ("oauth/callback", OPEN),  # the state it carries is the authorization
    ("api/v1/auth/token", OPEN), ("api/v1/auth/token/refresh", OPEN),
    ("admin/login/", OPEN), ("admin/logout/", OPEN),
    # The console: a staff user reaches its own pages; every object page needs permissions.
    ("admin/", CONSOLE_STAFF), ("admin/password_change/", CONSOLE_STAFF),
    ("admin/password_change/done/", CONSOLE_STAFF), ("admin/jsi18n/", CONSOLE_STAFF),
    ("admin/autocomplete/", ADMIN_ONLY), ("admin/r/<content_type_id>/<object_id>/", ADMIN_ONLY),
    ("admin/<app_label>/", ADMIN_ONLY), ("admin/<url>", ADMIN_ONLY),
    ("admin/models/", CONSOLE_STAFF),  # the plain model index behind the dashboard
    ("admin/servers/mcpserver/<pk>/check/", ADMIN_ONLY),
    ("admin/servers/mcpserver/<pk>/toggle/", ADMIN_ONLY),
    ("admin/servers/mcpserver/<object_id>/oauth/connect/", ADMIN_ONLY),
    ("admin/servers/mcpserver/<object_id>/oauth/disconnect/", ADMIN_ONLY),
    ("admin/*/*/", ADMIN_ONLY), ("admin/*/*/add/", ADMIN_ONLY),
    ("admin/*/*/<object_id>/", ADMIN_ONLY), ("admin/*/*/<object_id>/change/", ADMIN_ONLY),
    ("admin/*/*/<object_id>/delete/", ADMIN_ONLY), ("admin/*/*/<object_id>/history/", ADMIN_ONLY),
    ("admin/*/*/<id>/password/", ADMIN_ONLY),
    # The API: lists are scoped by for_user; the admin endpoints need permissions.
    ("api/v1/servers", USERS_ONLY), ("api/v1/agents", USERS_ONLY),
    ("api/v1/tokens", USERS_ONLY), ("api/v1/tokens/generate", USERS_ONLY),
    ("api/v1/servers/<pk>", SERVER), ("api/v1/servers/<pk>/refresh", SERVER),
    ("api/v1/servers/<pk>/toggle", SERVER), ("api/v1/servers/<pk>/tools", SERVER),
    ("api/v1/servers/<pk>/history", SERVER),
    ("api/v1/servers/<pk>/oauth/discover", SERVER),
    ("api/v1/servers/<pk>/oauth/start", SERVER_USE),
    ("api/v1/servers/<pk>/oauth/disconnect", SERVER_USE),
    ("api/v1/servers/<pk>/variables", SERVER_USE),
    ("api/v1/agents/<pk>", AGENT), ("api/v1/agents/<pk>/mcp-config", AGENT),
    ("api/v1/agents/<pk>/tools", AGENT),
    ("api/v1/agents/<pk>/connections/<server_id>", CONNECTION),
    ("api/v1/agents/<agent_id>/variables/<server_id>", AGENT_AND_SERVER),
    ("api/v1/tokens/<pk>", TOKEN), ("api/v1/tokens/<pk>/refresh", TOKEN),
    # Declared ahead of the merge of the /me/ page and the gateway's API (on main already).
    ("accounts/login/", OPEN), ("accounts/logout/", OPEN), ("me/", USERS_ONLY),
    ("me/agents/<agent_id>/", AGENT_ID), ("me/agents/<agent_id>/config/download/", AGENT_ID),
    ("me/agents/<agent_id>/servers/<server_id>/*/", AGENT_AND_SERVER),
    ("me/agents/<agent_id>/keys/", AGENT_ID), ("me/agents/<agent_id>/keys/<key_id>/revoke/", AGENT_ID),
    ("api/v1/agents/<agent_id>/keys", AGENT_ID), ("api/v1/agents/<agent_id>/keys/<pk>", AGENT_ID),
    ("api/v1/agents/<agent_id>/gateway-policy", AGENT_ID),
    # Group gateway policies: the gateway.*_grouppolicy permissions, which only the admin holds.
    ("api/v1/gateway/group-policies", ADMIN_ONLY), ("api/v1/gateway/group-policies/<pk>", ADMIN_ONLY),
    ("api/v1/admin/servers", ADMIN_ONLY), ("api/v1/admin/servers/stats", ADMIN_ONLY),
    ("api/v1/admin/servers/health", ADMIN_ONLY), ("api/v1/admin/audit", ADMIN_ONLY),
]  # fmt: skip


def policy_for(template: str) -> Policy | None:
    for pattern, policy in POLICY:
        if re.fullmatch(re.escape(pattern).replace(r"\*", "[^/]+"), template):
            return policy
    return None


def _may(policy: Policy, role: str, method: str, variants: dict[str, str]) -> bool:
    if role == "admin" or policy.who == "anyone":
        return True
    if not policy.params:
        return {"users": role in USERS, "staff": role in {"staff_no_perms"}}.get(policy.who, False)
    for param, kind in policy.params:
        right = "read" if method == "get" or policy.write == "use" else policy.write
        table = RIGHTS[kind].get(right, RIGHTS[kind]["read"])
        if role not in table[variants[param]]:
            return False
    return True


def _console_object(template: str) -> str:
    """An existing row of the console page's model, or an id no row has."""
    match = re.match(r"admin/(\w+)/(\w+)/", template)
    try:
        model = apps.get_model(match.group(1), match.group(2)) if match else None
    except LookupError:
        model = None
    row = model.objects.order_by("pk").first() if model else None
    return str(row.pk) if row else "999999"


def _cases(world: World, endpoint: Endpoint, policy: Policy) -> list[dict[str, str]]:
    """Every combination of object variants for the URL's parameters (names -> variant)."""
    if policy.params:
        kinds = [(param, list(world.objects[kind])) for param, kind in policy.params]
        return [dict(zip([p for p, _ in kinds], combo, strict=True))
                for combo in itertools.product(*[v for _, v in kinds])]  # fmt: skip
    return [{}]


def _values(world: World, endpoint: Endpoint, policy: Policy, case: dict[str, str]) -> dict:
    kinds = dict(policy.params)
    values = {p: world.objects[kinds[p]][v] for p, v in case.items()}
    for param in endpoint.params:
        values.setdefault(param, {"content_type_id": "1", "app_label": "servers",
                                  "url": "nothing-here/"}.get(param, "0"))  # fmt: skip
        if param in ("object_id", "id"):
            values[param] = _console_object(endpoint.template)
    return values


def _row_counts() -> list[int]:
    return [model._default_manager.count() for model in apps.get_models()
            if model._meta.app_label in COUNTED_APPS]  # fmt: skip


def _send(world: World, role: str, method: str, path: str) -> tuple[HttpResponse, bool]:
    """One request, its writes rolled back so every cell starts from the same world; and
    whether it added or removed rows (a console form answers a successful write with 302)."""
    with transaction.atomic():
        before = _row_counts()
        if path.startswith("/api/v1/"):
            client: Any = world.api(role)
            response = getattr(client, method)(path, {}, format="json")
        else:
            response = getattr(world.console(role), method)(path)
        wrote = _row_counts() != before
        transaction.set_rollback(True)
    return response, wrote


def outcome(response: HttpResponse, wrote: bool = False) -> str:
    """5xx; refused (401, 403, 404, or sent to the login page); through (2xx, or rows added
    or removed); redirect (elsewhere: an object page to its change page, a missing object to
    the index); other 4xx (validation, conflicts)."""
    code = response.status_code
    if code >= 500:
        return "5xx"
    if code == 405:  # the same for every object: it tells nothing, and lets nothing through
        return "method_not_allowed"
    if code in (401, 403, 404) or (code in (301, 302) and "login" in response.get("Location", "")):
        return "refused"
    if code < 300 or wrote:
        return "through"
    return "redirect" if code < 400 else "other_4xx"


def _row(endpoint: Endpoint, policy: Policy, case: dict[str, str]) -> str:
    """The access table's row: the objects of the URL, or the kind of URL without one."""
    if case:
        kinds = dict(policy.params)
        return " + ".join(f"{kinds[p]}:{v}" for p, v in case.items())
    side = "API" if endpoint.template.startswith("api/") else "console/other"
    return f"{side} ({policy.who})"


def test_every_url_is_declared_in_the_policy_table():
    missing = [e.template for e in endpoints() if policy_for(e.template) is None]

    assert not missing, f"declare these URLs in POLICY of {__name__}: {missing}"


# About 2,000 requests: over a minute on a shared machine, so `make test-security` runs it.
@pytest.mark.faults
@pytest.mark.timeout(1200)
def test_the_access_matrix(settings, capsys):
    settings.MCPCONTROL_REFRESH_WAIT_SECONDS = 0
    world, figures, wrong = build_world(), Counter[str](), []
    table: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for endpoint in endpoints():
        policy = policy_for(endpoint.template)
        assert policy is not None, endpoint.template
        for case, role, method in itertools.product(
            _cases(world, endpoint, policy), ROLES, endpoint.methods
        ):
            path = endpoint.path(_values(world, endpoint, policy, case))
            response, wrote = _send(world, role, method, path)
            got = outcome(response, wrote)
            figures[got] += 1
            table[_row(endpoint, policy, case), role][response.status_code] += 1
            may = _may(policy, role, method, case)
            if got == "5xx" or (got == "through" and not may):
                wrong.append(f"{role} {method.upper()} {path} {case} -> {got}")
            # Someone else's object: refused before its body is even validated (a 400 or 409
            # would tell a stranger the object exists, and could hide a missing check).
            if policy.params and not may and got not in ("refused", "method_not_allowed"):
                wrong.append(f"{role} {method.upper()} {path} {case} -> {response.status_code}, "
                             "not refused")  # fmt: skip
            # The objects are the right ones: their owner reads each of them.
            owners_read = (
                role == "owner"
                and method == "get"
                and set(case.values()) == {"mine"}
                and len(case) == len(endpoint.params)
                and path.startswith("/api/")
            )
            if owners_read and got != "through":
                wrong.append(f"owner cannot read: GET {path} -> {response.status_code}")
    with capsys.disabled():
        print(f"\naccess matrix: {sum(figures.values())} cells checked, "
              f"{figures['through']} through, {figures['refused']} refused, "
              f"{figures['redirect']} redirected, {figures['method_not_allowed']} x 405, "
              f"{figures['other_4xx']} other 4xx, {figures['5xx']} x 5xx, {len(wrong)} wrong")  # fmt: skip
        for row in sorted({r for r, _ in table}):
            print(
                f"  {row:28}",
                "; ".join(
                    f"{role} {'/'.join(map(str, sorted(table[row, role])))}" for role in ROLES
                ),
            )
    assert not wrong, "\n".join(wrong)
