import pytest
from django.core.cache import cache
from django.test import override_settings

from audit.models import AuditEvent
from servers import services
from servers.models import McpServer
from tests.factories import GrantFactory, GroupFactory, McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-upstream-token"


def _create_body(**extra):
    return {"server_name": "Weather", "url": "https://weather.example.com/mcp", **extra}


# --- list -----------------------------------------------------------------------------


def test_it_lists_servers_with_pagination(user_api):
    McpServerFactory.create_batch(3)
    response = user_api.get("/api/v1/servers?per_page=2&page=2")
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"total": 3, "page": 2, "per_page": 2, "total_pages": 2}
    assert len(body["servers"]) == 1


def test_it_lists_the_documented_item_fields(user_api):
    server = McpServerFactory(tags=["geo"])
    item = user_api.get("/api/v1/servers").json()["servers"][0]
    assert item["id"] == str(server.pk)
    assert item["server_name"] == server.name
    assert item["proxy_pass_url"] == server.url
    assert item["supported_transports"] == ["streamable-http"]
    assert item["num_tools"] == 2
    assert item["tool_list"] == [{"name": "search"}, {"name": "fetch"}]
    for key in ("path", "description", "auth_type", "tags", "scope", "user_id", "status",
                "created_at", "updated_at"):  # fmt: skip
        assert key in item


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page"),
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=x", "page"),
    ],
)
def test_it_rejects_out_of_range_paging(user_api, query, message):
    response = user_api.get(f"/api/v1/servers?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert response.json()["message"].startswith(message)


def test_it_filters_by_query_on_name(user_api):
    McpServerFactory(name="Weather")
    McpServerFactory(name="Calendar")
    names = [
        s["server_name"] for s in user_api.get("/api/v1/servers?query=weath").json()["servers"]
    ]
    assert names == ["Weather"]


def test_it_filters_by_query_on_description(user_api):
    McpServerFactory(name="A", description="forecasts")
    McpServerFactory(name="B")
    names = [
        s["server_name"] for s in user_api.get("/api/v1/servers?query=forecast").json()["servers"]
    ]
    assert names == ["A"]


def test_it_filters_by_query_on_tags(user_api):
    McpServerFactory(name="A", tags=["finance"])
    McpServerFactory(name="B", tags=["geo"])
    names = [
        s["server_name"] for s in user_api.get("/api/v1/servers?query=financ").json()["servers"]
    ]
    assert names == ["A"]


def test_it_filters_by_scope(user_api, user):
    McpServerFactory(name="A")
    McpServerFactory(name="B", scope=McpServer.Scope.PRIVATE_USER, owner=user)
    names = [
        s["server_name"]
        for s in user_api.get("/api/v1/servers?scope=private_user").json()["servers"]
    ]
    assert names == ["B"]


def test_it_filters_by_status(user_api):
    McpServerFactory(name="A")
    McpServerFactory(name="B", status=McpServer.Status.ERROR)
    names = [
        s["server_name"] for s in user_api.get("/api/v1/servers?status=error").json()["servers"]
    ]
    assert names == ["B"]


def test_it_rejects_an_unknown_scope_filter(user_api):
    response = user_api.get("/api/v1/servers?scope=everyone")
    assert response.status_code == 400
    assert "scope" in response.json()["fields"]


@pytest.mark.parametrize("per_page", [5, 50])
def test_it_lists_in_a_constant_number_of_queries(
    admin_api, django_assert_max_num_queries, per_page
):
    McpServerFactory.create_batch(per_page)
    with django_assert_max_num_queries(3):  # user, count, page
        response = admin_api.get(f"/api/v1/servers?per_page={per_page}")
    assert len(response.json()["servers"]) == per_page


@pytest.mark.parametrize("per_page", [5, 50])
def test_it_lists_for_a_user_in_a_constant_number_of_queries(
    user_api, django_assert_max_num_queries, per_page
):
    McpServerFactory.create_batch(per_page)
    with django_assert_max_num_queries(3):
        response = user_api.get(f"/api/v1/servers?per_page={per_page}")
    assert len(response.json()["servers"]) == per_page


# --- detail ---------------------------------------------------------------------------


def test_it_shows_detail_with_an_etag(user_api):
    server = McpServerFactory()
    response = user_api.get(f"/api/v1/servers/{server.pk}")
    assert response.status_code == 200
    assert response["ETag"] == 'W/"1"'
    body = response.json()
    assert body["version"] == 1
    assert body["transport"] == {"type": "streamable-http", "url": server.url}
    assert body["connection_state"] == "disconnected"
    assert body["health"]["outcome"] == "unknown"
    assert body["is_recently_active"] is False


def test_it_shows_the_cached_connection_state(user_api):
    server = McpServerFactory()
    cache.set(services.health_cache_key(server.pk), {"outcome": "healthy", "latency_ms": 12})
    body = user_api.get(f"/api/v1/servers/{server.pk}").json()
    assert body["connection_state"] == "connected"
    assert body["health"]["outcome"] == "healthy"


def test_it_marks_a_server_connected_a_minute_ago_recently_active(user_api):
    from django.utils import timezone

    server = McpServerFactory(last_connected_at=timezone.now() - timezone.timedelta(minutes=1))
    assert user_api.get(f"/api/v1/servers/{server.pk}").json()["is_recently_active"] is True


def test_it_never_returns_secrets(admin_api):
    server = McpServerFactory(
        auth_type="bearer", oauth={"client_id": "public-client-id"}, oauth_client_secret="csecret"
    )
    GrantFactory(server=server, secret=SECRET)
    for path in ("", "/tools"):
        response = admin_api.get(f"/api/v1/servers/{server.pk}{path}")
        for secret in (SECRET, "csecret"):
            assert secret not in response.content.decode()
    body = admin_api.get(f"/api/v1/servers/{server.pk}").json()
    assert body["has_auth_token"] is True
    assert body["credential"]["stored"] is True
    assert body["oauth"]["has_client_secret"] is True
    assert body["oauth"]["client_id"] == "public-client-id"  # a client id is public (RFC 6749)


ENV_VALUE = "ghp_envValueThatMustStaySecret"
HEADER_VALUE = "headerValueThatMustStaySecret"


def map_server(**fields) -> McpServer:
    return McpServerFactory(
        env={"GITHUB_TOKEN": ENV_VALUE}, headers={"X-Api-Key": HEADER_VALUE}, **fields
    )


def test_it_shows_env_and_header_names_with_values_redacted(admin_api):
    server = map_server()

    body = admin_api.get(f"/api/v1/servers/{server.pk}").json()

    assert body["transport"]["headers"] == {"X-Api-Key": "[redacted]"}
    stdio = McpServerFactory(transport_type="stdio", command="srv", env={"GITHUB_TOKEN": "v"})
    body = admin_api.get(f"/api/v1/servers/{stdio.pk}").json()
    assert body["transport"]["env"] == {"GITHUB_TOKEN": "[redacted]"}


def test_it_never_returns_env_or_header_values(admin_api):
    server = map_server()

    for path in (f"/api/v1/servers/{server.pk}", "/api/v1/servers", "/api/v1/admin/servers"):
        text = admin_api.get(path).content.decode()
        assert ENV_VALUE not in text
        assert HEADER_VALUE not in text


def test_an_update_sending_back_redacted_values_keeps_them(admin_api):
    server = map_server()
    read = admin_api.get(f"/api/v1/servers/{server.pk}").json()

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}",
        {
            "env": {"GITHUB_TOKEN": "[redacted]"},
            "transport": read["transport"],
            "version": read["version"],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    server.refresh_from_db()
    assert server.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert server.headers == {"X-Api-Key": HEADER_VALUE}


def test_an_update_replaces_a_new_value_and_removes_an_omitted_name(admin_api):
    server = McpServerFactory(env={"KEEP": "k-value", "NEW": "old-value", "GONE": "g-value"})

    admin_api.patch(
        f"/api/v1/servers/{server.pk}",
        {"env": {"KEEP": "[redacted]", "NEW": "new-value"}, "version": 1},
        format="json",
    )

    server.refresh_from_db()
    assert server.env == {"KEEP": "k-value", "NEW": "new-value"}


def test_it_rejects_redacted_for_a_name_with_nothing_stored(admin_api):
    server = McpServerFactory(env={"A": "a-value"})

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"env": {"B": "[redacted]"}, "version": 1}, format="json"
    )

    assert response.status_code == 400
    assert "env" in response.json()["fields"]
    server.refresh_from_db()
    assert server.env == {"A": "a-value"}


def test_it_rejects_redacted_values_on_create(admin_api):
    response = admin_api.post(
        "/api/v1/servers", _create_body(headers={"X-Api-Key": "[redacted]"}), format="json"
    )

    assert response.status_code == 400
    assert "headers" in response.json()["fields"]


def test_it_audits_env_and_header_changes_with_values_redacted(admin_api):
    server = map_server()

    admin_api.patch(
        f"/api/v1/servers/{server.pk}",
        {"env": {"GITHUB_TOKEN": "ghp_rotatedValue"}, "headers": {}, "version": 1},
        format="json",
    )

    event = AuditEvent.objects.get(entity_id=str(server.pk), action="update")
    assert event.changes == {
        "env": {"old": {"GITHUB_TOKEN": "[redacted]"}, "new": {"GITHUB_TOKEN": "[redacted]"}},
        "headers": {"old": {"X-Api-Key": "[redacted]"}, "new": {}},
    }


def test_audit_rows_never_contain_env_or_header_values(admin_api):
    response = admin_api.post("/api/v1/servers", _create_body(
        env={"GITHUB_TOKEN": ENV_VALUE}, headers={"X-Api-Key": HEADER_VALUE},
    ), format="json")  # fmt: skip
    server_id = response.json()["id"]
    admin_api.patch(
        f"/api/v1/servers/{server_id}", {"env": {"GITHUB_TOKEN": "x" + ENV_VALUE}, "version": 1},
        format="json",
    )  # fmt: skip
    admin_api.delete(f"/api/v1/servers/{server_id}")

    rows = list(AuditEvent.objects.filter(entity_id=server_id).values_list("changes", flat=True))
    assert len(rows) == 3
    assert ENV_VALUE not in str(rows)
    assert HEADER_VALUE not in str(rows)


def test_it_returns_404_for_an_unknown_server(user_api):
    response = user_api.get("/api/v1/servers/999999")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# --- create ---------------------------------------------------------------------------


def test_it_creates_a_private_server_for_a_user(user_api, user):
    response = user_api.post("/api/v1/servers", _create_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1
    assert body["scope"] == "private_user"
    # Seed 004's create response keys, within the whole document.
    assert {"id", "server_name", "path", "description", "scope", "status", "created_at",
            "updated_at", "version"} <= set(body)  # fmt: skip
    assert body["status"] == "active"
    assert McpServer.objects.get(pk=body["id"]).owner == user


def test_it_accepts_the_nested_api_key_authentication(user_api):
    auth = {"type": "apiKey", "key": SECRET, "headerName": "X-Api-Key", "prefix": "Key "}
    body = _create_body(connection_details={"authentication": auth})
    response = user_api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 201, response.json()
    server = McpServer.objects.get(pk=response.json()["id"])
    assert (server.auth_type, server.header_name, server.prefix) == ("api_key", "X-Api-Key", "Key ")
    assert server.grants.get().secret.reveal() == SECRET
    assert SECRET not in response.content.decode()


def test_it_accepts_flat_bearer_and_oauth_fields(admin_api):
    body = _create_body(
        auth_type="oauth",
        oauth={"client_id": "cid", "client_secret": "cs", "token_url": "https://a/t"},
    )
    response = admin_api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 201, response.json()
    server = McpServer.objects.get(pk=response.json()["id"])
    assert server.oauth_client_secret.reveal() == "cs"
    assert server.oauth_config.token_url == "https://a/t"


def test_it_audits_a_create_with_secrets_redacted(user_api):
    response = user_api.post(
        "/api/v1/servers", _create_body(auth_type="bearer", auth_token=SECRET), format="json"
    )
    event = AuditEvent.objects.get(entity_type="server", entity_id=response.json()["id"])
    assert event.action == "create"
    grant_event = AuditEvent.objects.get(entity_type="grant", action="create")
    assert grant_event.changes["secret"] == {"old": None, "new": "[redacted]"}
    assert SECRET not in str(event.changes) + str(grant_event.changes)


def test_it_rejects_a_server_without_url(user_api):
    response = user_api.post("/api/v1/servers", {"server_name": "X"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "url" in response.json()["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {"server_name": "X", "url": "https://x.example.com", "transport": "carrier-pigeon"},
        {"server_name": "X", "url": "https://x.example.com", "tags": "not-a-list"},
        {"server_name": "X", "url": "https://x.example.com", "timeout_ms": "soon"},
        {"server_name": "X", "url": "https://x.example.com", "custom_user_vars": {"a": "\x00"}},
        {"server_name": ["X"], "url": "https://x.example.com"},
    ],
)
def test_it_rejects_wrong_types_and_unknown_enums(user_api, body):
    response = user_api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 400
    assert "fields" in response.json()


def test_it_rejects_malformed_json(user_api):
    response = user_api.post("/api/v1/servers", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_it_rejects_an_oversized_body(user_api):
    response = user_api.post("/api/v1/servers", _create_body(description="x" * 5000), format="json")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_it_answers_unknown_api_paths_with_json(user_api):
    response = user_api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_forbids_users_creating_stdio_servers(user_api):
    body = {"server_name": "Shell", "transport": "stdio", "command": "/bin/sh"}
    response = user_api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_it_lets_admins_create_stdio_servers(admin_api):
    body = {"server_name": "Shell", "transport": "stdio", "command": "/bin/echo", "args": ["hi"]}
    assert admin_api.post("/api/v1/servers", body, format="json").status_code == 201


def test_it_forbids_users_creating_servers_for_others(user_api):
    other = UserFactory()
    response = user_api.post("/api/v1/servers", _create_body(user_id=str(other.pk)), format="json")
    assert response.status_code == 403


def test_it_forbids_users_creating_app_wide_servers(user_api):
    response = user_api.post("/api/v1/servers", _create_body(scope="shared_app"), format="json")
    assert response.status_code == 403


def test_it_requires_the_write_scope(make_client, user):
    client = make_client(user, scopes=["read:servers"])
    response = client.post("/api/v1/servers", _create_body(), format="json")
    assert response.status_code == 403
    assert "write:servers" in response.json()["message"]


def test_it_rejects_a_jwt_without_any_scope(make_client, user):
    assert make_client(user, scopes=[]).get("/api/v1/servers").status_code == 403


def test_it_rejects_anonymous_requests(client):
    response = client.get("/api/v1/servers")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_it_accepts_an_admin_browser_session(client, admin):
    client.force_login(admin)
    assert client.get("/api/v1/servers").status_code == 200


# --- update ---------------------------------------------------------------------------


def test_it_updates_with_the_current_version(admin_api):
    server = McpServerFactory()
    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"description": "new", "version": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2
    assert response["ETag"] == 'W/"2"'
    server.refresh_from_db()
    assert server.description == "new"


def test_it_answers_409_for_a_stale_version(admin_api):
    server = McpServerFactory(version=3)
    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"description": "x", "version": 2}, format="json"
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict", "message": "Server was modified by another process",
        "current_version": 3, "provided_version": 2,
    }  # fmt: skip


def test_it_updates_with_a_matching_if_match(admin_api):
    server = McpServerFactory()
    etag = admin_api.get(f"/api/v1/servers/{server.pk}")["ETag"]
    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"description": "n"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 200


def test_it_answers_412_for_a_stale_if_match(admin_api):
    server = McpServerFactory(version=2)
    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"description": "n"}, format="json", HTTP_IF_MATCH='W/"1"'
    )
    assert response.status_code == 412
    assert response.json()["error"] == "precondition_failed"


def test_it_requires_a_version_or_if_match(admin_api):
    server = McpServerFactory()
    response = admin_api.patch(f"/api/v1/servers/{server.pk}", {"description": "n"}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()["fields"]


def test_it_rejects_an_invalid_update(admin_api):
    server = McpServerFactory()
    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"url": "ftp://x", "version": 1}, format="json"
    )
    assert response.status_code == 400
    assert "url" in response.json()["fields"]


def test_it_audits_an_update_with_secrets_redacted(admin_api):
    server = McpServerFactory(auth_type="bearer")
    grant = GrantFactory(server=server, secret="old-secret")
    admin_api.patch(
        f"/api/v1/servers/{server.pk}", {"auth_token": SECRET, "version": 1}, format="json"
    )
    event = AuditEvent.objects.get(entity_type="grant", entity_id=str(grant.pk), action="update")
    assert event.changes["secret"] == {"old": "[redacted]", "new": "[redacted]"}
    assert SECRET not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


# --- delete, toggle, tools, refresh ----------------------------------------------------


def test_it_deletes_a_server(admin_api):
    server = McpServerFactory()
    assert admin_api.delete(f"/api/v1/servers/{server.pk}").status_code == 204
    assert not McpServer.objects.filter(pk=server.pk).exists()


def test_it_toggles_a_server(admin_api):
    server = McpServerFactory()
    response = admin_api.post(
        f"/api/v1/servers/{server.pk}/toggle", {"enabled": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert set(response.json()) == {"id", "server_name", "path", "enabled", "status", "updated_at"}


def test_it_rejects_a_toggle_without_a_boolean(admin_api):
    server = McpServerFactory()
    response = admin_api.post(
        f"/api/v1/servers/{server.pk}/toggle", {"enabled": "yes"}, format="json"
    )
    assert response.status_code == 400


def test_it_lists_a_servers_tools(user_api):
    server = McpServerFactory()
    body = user_api.get(f"/api/v1/servers/{server.pk}/tools").json()
    assert body["num_tools"] == 2
    assert body["cached"] is True
    assert [t["name"] for t in body["tools"]] == ["search", "fetch"]


def test_it_refreshes_a_server_through_a_real_health_check(admin_api, sdk_http_url, celery_eager):
    server = McpServerFactory(transport_type="streamable-http", url=sdk_http_url)

    response = admin_api.post(f"/api/v1/servers/{server.pk}/refresh")
    body = response.json()

    assert response.status_code == 200
    assert body["outcome"] == "healthy"
    assert body["status"] == "healthy"
    assert body["num_tools"] > 0
    assert body["response_time_ms"] is not None
    assert body["last_checked"] is not None


def test_it_reports_an_unreachable_server_on_refresh(admin_api, refused_url, celery_eager):
    server = McpServerFactory(transport_type="streamable-http", url=refused_url)

    body = admin_api.post(f"/api/v1/servers/{server.pk}/refresh").json()

    assert body["outcome"] == "unreachable"
    assert body["status"] == "unhealthy"
    server.refresh_from_db()
    assert server.status == "active"  # one failure is below the error threshold


@override_settings(MCPCONTROL_REFRESH_WAIT_SECONDS=0)
def test_it_answers_202_with_the_task_when_the_check_takes_longer(admin_api):
    server = McpServerFactory()  # no worker runs in this test: the check stays queued

    response = admin_api.post(f"/api/v1/servers/{server.pk}/refresh")

    assert response.status_code == 202
    assert response.json()["outcome"] == "pending"
    assert response.json()["task_id"]


def test_it_answers_409_when_a_check_is_already_running(admin_api, celery_eager):
    from django.utils import timezone

    server = McpServerFactory()
    McpServer.objects.filter(pk=server.pk).update(
        check_claim="other-worker",
        check_claimed_until=timezone.now() + timezone.timedelta(minutes=1),
    )

    response = admin_api.post(f"/api/v1/servers/{server.pk}/refresh")

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


# --- visibility matrix -----------------------------------------------------------------

# who -> scope -> (read, write, delete) status codes
MATRIX = {
    "admin": {"shared_app": (200, 200, 204), "shared_user": (200, 200, 204), "private_user": (200, 200, 204)},
    "owner": {"shared_app": (200, 403, 403), "shared_user": (200, 200, 204), "private_user": (200, 200, 204)},
    "other": {"shared_app": (200, 403, 403), "shared_user": (200, 403, 403), "private_user": (404, 404, 404)},
    "member": {"shared_app": (200, 403, 403), "shared_user": (200, 403, 403), "private_user": (200, 403, 403)},
}  # fmt: skip
CASES = [
    (who, scope, op, codes[i])
    for who, scopes in MATRIX.items()
    for scope, codes in scopes.items()
    for i, op in enumerate(("read", "write", "delete"))
]


@pytest.mark.parametrize(("who", "scope", "op", "expected"), CASES)
def test_it_applies_the_visibility_matrix(make_client, admin, who, scope, op, expected):
    owner, other, member, group = UserFactory(), UserFactory(), UserFactory(), GroupFactory()
    member.groups.add(group)
    server = McpServerFactory(
        scope=scope, owner=None if scope == "shared_app" else owner, group=group
    )
    client = make_client({"admin": admin, "owner": owner, "other": other, "member": member}[who])
    url = f"/api/v1/servers/{server.pk}"
    if op == "read":
        response = client.get(url)
    elif op == "write":
        response = client.patch(url, {"description": "x", "version": 1}, format="json")
    else:
        response = client.delete(url)
    assert response.status_code == expected
    if expected in (403, 404):
        assert response.json()["error"] == {403: "forbidden", 404: "not_found"}[expected]


@pytest.mark.emulator_gap(
    "SecantusDB 0.7.0b3 answers values_list('content_type__app_label', 'codename') (a $lookup"
    " join, which auth's has_perm uses) with the content type's id instead of its app_label,"
    " so a non-superuser's permissions read as '1.change_mcpserver'"
)
def test_an_operator_with_the_change_permission_may_change_an_app_wide_server(make_client):
    from django.contrib.auth.models import Permission, User

    operator = UserFactory()
    operator.user_permissions.add(Permission.objects.get(codename="change_mcpserver"))
    server = McpServerFactory(scope="shared_app")
    client = make_client(User.objects.get(pk=operator.pk))  # fresh: no stale permission cache

    response = client.patch(
        f"/api/v1/servers/{server.pk}", {"description": "x", "version": 1}, format="json"
    )

    assert response.status_code == 200


def test_an_operator_still_may_not_set_a_stdio_command(make_client):
    from django.contrib.auth.models import Permission, User

    operator = UserFactory()
    operator.user_permissions.add(Permission.objects.get(codename="change_mcpserver"))
    server = McpServerFactory(scope="shared_app")
    client = make_client(User.objects.get(pk=operator.pk))

    response = client.patch(
        f"/api/v1/servers/{server.pk}",
        {"transport_type": "stdio", "command": "/bin/sh", "version": 1},
        format="json",
    )

    assert response.status_code == 403


@override_settings(DEBUG=True)
def test_it_answers_json_errors_even_where_django_renders_html_pages(user_api):
    # In debug (make run) Django answers an unknown path with its HTML page; under /api/
    # a client gets the API's error body instead.
    response = user_api.get("/api/v1/servers/not-an-id")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"
