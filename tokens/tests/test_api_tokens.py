from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.factories import AdminFactory, TokenFactory, UserFactory
from tokens.models import Token

pytestmark = pytest.mark.django_db

VALUE = "gho_upstream-secret-value"


def _store_body(**extra):
    return {"type": "oauth_access", "identifier": "github", "token": VALUE, **extra}


def test_it_stores_a_token_without_echoing_it(user_api, user):
    response = user_api.post("/api/v1/tokens", _store_body(), format="json")
    assert response.status_code == 201
    assert VALUE not in response.content.decode()
    assert Token.objects.get(user=user).token.reveal() == VALUE


def test_it_audits_a_stored_token_redacted(user_api):
    user_api.post("/api/v1/tokens", _store_body(), format="json")
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREATE, entity_type="token")
    assert event.changes["token"]["new"] == "[redacted]"
    assert VALUE not in str(event.changes)


def test_it_rejects_an_unknown_token_type(user_api):
    response = user_api.post("/api/v1/tokens", _store_body(type="password"), format="json")
    assert response.status_code == 400
    assert "type" in response.json()["fields"]


def test_it_shows_the_owner_the_decrypted_token(user_api, user):
    token = TokenFactory(user=user, token=VALUE)
    response = user_api.get(f"/api/v1/tokens/{token.pk}")
    assert response.status_code == 200
    assert response.json()["token"] == VALUE
    assert response["Cache-Control"] == "no-store"


def test_it_audits_each_read_of_a_tokens_value_without_the_value(user_api, user):
    token = TokenFactory(user=user, token=VALUE)

    user_api.get(f"/api/v1/tokens/{token.pk}")
    user_api.get(f"/api/v1/tokens/{token.pk}")

    events = AuditEvent.objects.filter(action=AuditEvent.Action.SECRET_READ)
    assert events.count() == 2
    event = events.first()
    assert (event.entity_type, event.entity_id, event.actor) == ("token", str(token.pk), user)
    assert VALUE not in str(event.changes)
    assert VALUE not in event.entity_repr


def test_it_does_not_audit_a_read_it_refuses(user_api, user):
    token = TokenFactory(user=user, expires_at=timezone.now() - timedelta(seconds=1))
    user_api.get(f"/api/v1/tokens/{token.pk}")
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SECRET_READ).exists()


def test_it_hides_an_expired_token(user_api, user):
    token = TokenFactory(user=user, expires_at=timezone.now() - timedelta(seconds=1))
    response = user_api.get(f"/api/v1/tokens/{token.pk}")
    assert response.status_code == 404
    assert response.json()["message"] == "Token not found or expired"


@pytest.mark.parametrize("method", ["get", "delete"])
def test_it_hides_another_users_token_even_from_admins(admin_api, method):
    token = TokenFactory(user=UserFactory())
    assert getattr(admin_api, method)(f"/api/v1/tokens/{token.pk}").status_code == 404


def test_it_hides_another_users_token_on_refresh(user_api):
    token = TokenFactory()
    body = {"new_access_token": "x", "new_expires_at": None}
    assert (
        user_api.put(f"/api/v1/tokens/{token.pk}/refresh", body, format="json").status_code == 404
    )


def test_it_lists_tokens_without_values(user_api, user):
    TokenFactory.create_batch(2, user=user, token=VALUE)
    TokenFactory()
    response = user_api.get("/api/v1/tokens")
    assert response.json()["pagination"]["total"] == 2
    assert VALUE not in response.content.decode()


def test_it_filters_tokens_by_type(user_api, user):
    TokenFactory(user=user, type="api_key")
    TokenFactory(user=user, type="oauth_refresh")
    tokens = user_api.get("/api/v1/tokens?type=oauth_refresh").json()["tokens"]
    assert [t["type"] for t in tokens] == ["oauth_refresh"]


def test_it_filters_tokens_by_identifier(user_api, user):
    TokenFactory(user=user, identifier="github")
    TokenFactory(user=user, identifier="gitlab")
    tokens = user_api.get("/api/v1/tokens?identifier=gitlab").json()["tokens"]
    assert [t["identifier"] for t in tokens] == ["gitlab"]


def test_it_caps_per_page_at_100(user_api):
    assert user_api.get("/api/v1/tokens?per_page=101").status_code == 400


@pytest.mark.parametrize("per_page", [3, 30])
def test_it_lists_tokens_in_a_constant_number_of_queries(
    user_api, user, django_assert_max_num_queries, per_page
):
    TokenFactory.create_batch(per_page, user=user)
    with django_assert_max_num_queries(3):
        assert len(user_api.get(f"/api/v1/tokens?per_page={per_page}").json()["tokens"]) == per_page


def test_it_refreshes_a_token(user_api, user):
    token = TokenFactory(user=user, type="oauth_access", identifier="gh")
    expires = (timezone.now() + timedelta(hours=1)).isoformat()
    body = {"new_access_token": "new-a", "new_expires_at": expires, "new_refresh_token": "new-r"}
    response = user_api.put(f"/api/v1/tokens/{token.pk}/refresh", body, format="json")
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.token.reveal() == "new-a"
    refresh = Token.objects.get(user=user, type="oauth_refresh", identifier="gh")
    assert refresh.token.reveal() == "new-r"
    # Seed 004 answers with the new access token (the caller's own), never the refresh one.
    assert response.json()["token"] == "new-a"
    assert "new-r" not in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_it_rejects_a_refresh_without_a_token(user_api, user):
    token = TokenFactory(user=user)
    response = user_api.put(
        f"/api/v1/tokens/{token.pk}/refresh", {"new_expires_at": None}, format="json"
    )
    assert response.status_code == 400


def test_it_deletes_a_token(user_api, user):
    token = TokenFactory(user=user)
    assert user_api.delete(f"/api/v1/tokens/{token.pk}").status_code == 204
    assert not Token.objects.exists()


def test_it_needs_the_read_tokens_scope(make_client, user):
    assert make_client(user, scopes=["read:servers"]).get("/api/v1/tokens").status_code == 403


# --- JWT auth and generation -------------------------------------------------------------


def _login(username, password="pw-for-tests-only"):
    return APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )


def test_it_issues_a_jwt_pair_with_the_roles_scopes(user):
    response = _login(user.username)
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get("/api/v1/servers").status_code == 200
    assert client.get("/api/v1/admin/servers").status_code == 403


def test_it_gives_admins_the_admin_scope():
    admin = AdminFactory()
    access = _login(admin.username).json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get("/api/v1/admin/servers").status_code == 200


def test_it_rejects_a_wrong_password(user):
    response = _login(user.username, "wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_it_refreshes_a_jwt(user):
    refresh = _login(user.username).json()["refresh"]
    response = APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 200
    assert "access" in response.json()


def test_it_generates_a_scoped_token_pair(user_api):
    body = {"requested_scopes": ["read:servers"], "expires_in_hours": 2, "description": "ci"}
    response = user_api.post("/api/v1/tokens/generate", body, format="json")
    assert response.status_code == 200
    tokens = response.json()["tokens"]
    assert response.json()["success"] is True
    assert (tokens["token_type"], tokens["scope"], tokens["expires_in"]) == (
        "Bearer",
        "read:servers",
        7200,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert client.get("/api/v1/servers").status_code == 200
    assert client.post("/api/v1/servers", {}, format="json").status_code == 403


def test_it_audits_a_generated_token_without_its_value(user_api):
    body = {"requested_scopes": ["read:servers"], "expires_in_hours": 1}
    tokens = user_api.post("/api/v1/tokens/generate", body, format="json").json()["tokens"]
    event = AuditEvent.objects.get(entity_type="jwt")
    assert tokens["access_token"] not in str(event.changes)


@pytest.mark.parametrize(
    "body",
    [
        {"requested_scopes": ["read:servers"], "expires_in_hours": 25},
        {"requested_scopes": ["read:servers"], "expires_in_hours": 0},
        {"requested_scopes": ["fly"], "expires_in_hours": 1},
        {"requested_scopes": [], "expires_in_hours": 1},
    ],
)
def test_it_rejects_invalid_generation_requests(user_api, body):
    assert user_api.post("/api/v1/tokens/generate", body, format="json").status_code == 400


def test_it_refuses_to_grant_the_admin_scope_to_users(user_api):
    body = {"requested_scopes": ["admin"], "expires_in_hours": 1}
    assert user_api.post("/api/v1/tokens/generate", body, format="json").status_code == 403


def test_it_refuses_to_widen_a_tokens_scopes(make_client, user):
    client = make_client(user, scopes=["write:tokens"])
    body = {"requested_scopes": ["write:servers"], "expires_in_hours": 1}
    assert client.post("/api/v1/tokens/generate", body, format="json").status_code == 403


def test_it_throttles_token_generation(user_api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "1000/min", "token_generation": "2/min"},
    }
    body = {"requested_scopes": ["read:servers"], "expires_in_hours": 1}
    codes = [
        user_api.post("/api/v1/tokens/generate", body, format="json").status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_it_throttles_writes_with_the_shared_error_body(user_api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "1/min", "token_generation": "2/min"},
    }
    user_api.post("/api/v1/tokens", _store_body(), format="json")
    response = user_api.post("/api/v1/tokens", _store_body(), format="json")
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"
    assert user_api.get("/api/v1/tokens").status_code == 200


@pytest.mark.django_db
def test_the_hourly_task_deletes_tokens_past_their_expiry(user, celery_eager):
    from tokens import tasks

    expired = TokenFactory(user=user, expires_at=timezone.now() - timedelta(seconds=1))
    live = TokenFactory(user=user)

    assert tasks.tokens_cleanup_expired.delay().get() == 1

    assert list(Token.objects.all()) == [live]
    event = AuditEvent.objects.get(action=AuditEvent.Action.DELETE, entity_type="token")
    assert event.entity_id == str(expired.pk)
