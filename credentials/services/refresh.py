"""Refreshing OAuth grants: the claim, the concurrent requests, storing or backing off.

Single flight: a grant is refreshed only by whoever claims it with a conditional UPDATE
(a random claim token plus a lease that lapses on its own), from any path: the beat's
batches, the health sweep's pre-step and the client config's pre-step. The token requests
run concurrently in a thread pool; the caller waits at most its budget and stores what came
back in time, and a late answer is still stored by the thread that got it, so a rotated
refresh token is never dropped on the floor.

Failures back off per grant (refresh_not_before), so a failing authorization server sees
one attempt per grant per backoff step, and a refusal of the refresh token marks the grant
for re-authorization once, with one audit row.
"""

import copy
import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from functools import lru_cache

import httpx
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import AuditEntry, audit_event_create, audit_events_create_many
from credentials import oauth
from credentials.models import Grant
from credentials.services.client import client_credentials_request, resource, token_request
from credentials.services.grants import grant_mark_reauth
from mcpcontrol.lib import http
from mcpcontrol.lib.metrics import record_token_refresh
from servers.credential_port import Need
from servers.models import McpServer

logger = logging.getLogger(__name__)

# Seed 003: a token used within 5 minutes of its expiry is refreshed first; the beat uses
# the same margin, so a grant in use is normally renewed before anyone needs to wait.
REFRESH_MARGIN = timedelta(minutes=5)
# Longer than any token request can take (lib/http's 10 s timeout), so a live refresh
# never loses its claim; a dead worker's claim lapses after it.
CLAIM_TTL = timedelta(seconds=60)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=15)
# The server refused the grant or the client: retrying cannot help, a human must reconnect.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
POOL_THREAD_PREFIX = "grant-refresh"


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.MCPCONTROL_OAUTH_REFRESH_CONCURRENCY,
        thread_name_prefix=POOL_THREAD_PREFIX,
    )


def _client() -> httpx.Client:
    return _pooled_client(http.default_timeout())


@lru_cache(maxsize=2)
def _pooled_client(timeout: float) -> httpx.Client:
    """One connection pool for every refresh of this process (httpx clients are thread-safe)."""
    limits = httpx.Limits(max_connections=settings.MCPCONTROL_OAUTH_REFRESH_CONCURRENCY)
    return http.client(limits=limits, timeout=timeout)


def _claim_ttl() -> timedelta:
    # Longer than any token request can take, so a live refresh never loses its claim.
    return max(CLAIM_TTL, timedelta(seconds=3 * http.default_timeout()))


def _claim(grant_ids: list[int], *, now: datetime) -> tuple[str, list[Grant]]:
    """Claim the due grants among `grant_ids`; return our claim token and the grants won."""
    claim = uuid.uuid4().hex
    # `due` joins the server (its grant type): read first, since an update may touch one
    # collection only on MongoDB. The conditional UPDATE on the grant's own fields is the
    # claim: of two callers, exactly one moves each row.
    due = Grant.objects.due(now=now, margin=REFRESH_MARGIN).filter(id__in=grant_ids)
    Grant.objects.filter(id__in=list(due.values_list("id", flat=True))).unclaimed_due(
        now=now, margin=REFRESH_MARGIN
    ).update(refresh_claim=claim, refresh_claimed_until=now + _claim_ttl())
    won = Grant.objects.filter(refresh_claim=claim).select_related("server")
    return claim, list(won)


def _request(grant: Grant) -> oauth.TokenResponse:
    """The token request for one claimed grant (network only: runs in a pool thread)."""
    server = grant.server
    if grant.refresh_secret is None:
        return client_credentials_request(server, client=_client())  # machine grants ask again
    params = {"grant_type": "refresh_token", "refresh_token": grant.refresh_secret.reveal()}
    params["resource"] = resource(server)
    return token_request(server, params, client=_client())


def _store(grant: Grant, claim: str, response: oauth.TokenResponse) -> bool:
    """Store a new grant while our claim holds; False when someone else stored one since."""
    return grant.pk in _store_many([(grant, response)], claim)


def _store_many(answers: list[tuple[Grant, oauth.TokenResponse]], claim: str) -> set[int]:
    """Store the new grants of one batch in one transaction, each by its own conditional
    UPDATE (the claim still guards every row), and their audit rows in one INSERT: one
    commit per batch, not two statements and a commit per grant. Returns the ids stored."""
    stored: set[int] = set()
    entries: list[AuditEntry] = []
    with transaction.atomic():
        for grant, response in answers:
            if _update(grant, claim, response):
                stored.add(grant.pk)
                changes = {"refresh_token": "[rotated]" if response.refresh_token else "[kept]"}
                entries.append(
                    AuditEntry(action=AuditEvent.Action.REFRESH, target=grant, changes=changes)
                )
        audit_events_create_many(entries=entries)
    return stored


def _update(grant: Grant, claim: str, response: oauth.TokenResponse) -> bool:
    """One grant's conditional UPDATE to the new tokens (inside the caller's transaction).
    `grant` itself stays as loaded, so a retry after a rolled-back batch sees the old token."""
    old_refresh = grant.refresh_secret.ciphertext if grant.refresh_secret is not None else None
    grant = copy.copy(grant)
    grant.set_tokens(
        access=response.access_token, refresh=response.refresh_token,
        expires_at=response.expires_at(timezone.now()), scope=response.scope,
    )  # fmt: skip
    values = {
        "secret": grant.secret, "refresh_secret": grant.refresh_secret,
        "expires_at": grant.expires_at, "scope": grant.scope, "needs_reauth": False,
        "reauth_reason": "", "refresh_failures": 0, "refresh_not_before": None,
        "refresh_uncertain": False, "refresh_claim": "", "refresh_claimed_until": None,
        "updated_at": timezone.now(),
    }  # fmt: skip
    stored = Grant.objects.filter(pk=grant.pk, refresh_claim=claim).update(**values)
    if not stored:  # our lease lapsed: still ours unless a newer refresh token was stored
        stored = Grant.objects.filter(
            pk=grant.pk, refresh_secret=old_refresh, needs_reauth=False
        ).update(**values)
    return bool(stored)


def _backoff(failures: int) -> timedelta:
    step: timedelta = BACKOFF_FIRST * 2 ** max(failures - 1, 0)
    return min(step, BACKOFF_MAX)


def _failed(grant: Grant, claim: str, error: oauth.OAuthError) -> str:
    """Record a failed refresh: re-authorization for a refused grant, else a backoff step."""
    transient = isinstance(error, oauth.OAuthTransientError)
    if error.code in REAUTH_ERRORS and not transient:
        reason = f"the authorization server refused the refresh token ({error.code})"
        if grant.refresh_uncertain:
            reason = (
                "an earlier refresh got no answer and the authorization server has since "
                f"refused the refresh token ({error.code}): it probably rotated it"
            )
        grant_mark_reauth(grant=grant, reason=reason, claim=claim)
        return "needs_reauth"
    failures = grant.refresh_failures + 1
    with transaction.atomic():
        released = Grant.objects.filter(pk=grant.pk, refresh_claim=claim).update(
            refresh_claim="", refresh_claimed_until=None, refresh_failures=F("refresh_failures") + 1,
            refresh_not_before=timezone.now() + _backoff(failures),
            refresh_uncertain=grant.refresh_uncertain or error.code == "no_answer",
        )  # fmt: skip
        if released and failures == 1:  # one audit row per failure streak, not per attempt
            changes = {"error": error.code, "retry_in_seconds": _backoff(1).total_seconds()}
            audit_event_create(
                action=AuditEvent.Action.REFRESH_FAILED, target=grant, changes=changes
            )
    logger.warning("OAuth refresh of grant %s failed (%s), attempt %d", grant.pk, error.code,
                   failures)  # fmt: skip
    return "failed"


def _settle(grant: Grant, claim: str, future: "Future[oauth.TokenResponse]") -> str:
    """Store or record one finished request; always ends our claim."""
    outcome = _settled(grant, claim, future)
    record_token_refresh(result=outcome)
    return outcome


def _settled(grant: Grant, claim: str, future: "Future[oauth.TokenResponse]") -> str:
    try:
        response = future.result()
    except oauth.OAuthError as exc:
        return _failed(grant, claim, exc)
    except Exception as exc:
        # Not the server's answer (a bug, a secret that cannot be decrypted): release the
        # claim with a backoff step instead of stranding the grant.
        logger.exception("OAuth refresh of grant %s crashed", grant.pk)
        return _failed(grant, claim, oauth.OAuthError("internal_error", type(exc).__name__))
    return "refreshed" if _store(grant, claim, response) else "superseded"


def _settle_all(
    finished: list[tuple[Grant, "Future[oauth.TokenResponse]"]], claim: str
) -> dict[int, str]:
    """Settle the requests that finished in time: the answers stored together, each failure
    recorded on its own (rare, and each takes its own backoff or re-authorization)."""
    outcomes: dict[int, str] = {}
    answers: list[tuple[Grant, oauth.TokenResponse]] = []
    for grant, future in finished:
        if future.exception() is None:
            answers.append((grant, future.result()))
        else:
            outcomes[grant.pk] = _settle(grant, claim, future)
    try:
        stored = _store_many(answers, claim)
    except DatabaseError:
        # The batch rolled back, but the server may have rotated every refresh token in it:
        # store them one by one, so one bad row cannot lose the others' new tokens.
        logger.exception("storing %d refreshed grants together failed", len(answers))
        stored = {grant.pk for grant, response in answers if _store(grant, claim, response)}
    for grant, _response in answers:
        outcomes[grant.pk] = "refreshed" if grant.pk in stored else "superseded"
        record_token_refresh(result=outcomes[grant.pk])
    return outcomes


def _settle_late(grant: Grant, claim: str, future: "Future[oauth.TokenResponse]") -> None:
    """A request finished after its caller stopped waiting: store it from this thread."""
    try:
        _settle(grant, claim, future)
    finally:
        if threading.current_thread().name.startswith(POOL_THREAD_PREFIX):
            connections.close_all()  # a pool thread's own connection, not the caller's


def grants_refresh(*, grant_ids: list[int], budget: float) -> dict[int, str]:
    """Refresh the due grants among `grant_ids`, concurrently, waiting at most `budget`
    seconds. Returns an outcome per grant we claimed (refreshed, failed, needs_reauth,
    superseded, pending); grants not due or claimed elsewhere are left out."""
    claim, grants = _claim(grant_ids, now=timezone.now())
    if not grants:
        return {}
    futures = {_pool().submit(_request, grant): grant for grant in grants}
    done, late = wait(futures, timeout=max(budget, 0))
    outcomes = _settle_all([(futures[f], f) for f in done], claim)
    for future in late:
        grant = futures[future]
        future.add_done_callback(lambda f, g=grant: _settle_late(g, claim, f))  # type: ignore[misc]
        outcomes[grant.pk] = "pending"
    return outcomes


def grant_ids_due(*, now: datetime | None = None) -> list[int]:
    """Every grant the beat should refresh now, oldest expiry first."""
    now = now or timezone.now()
    rows = Grant.objects.due(now=now, margin=REFRESH_MARGIN).order_by("expires_at", "id")
    return list(rows.values_list("id", flat=True))


def grants_refresh_for(*, needs: Sequence[Need], budget: float) -> dict[int, str]:
    """The pre-step of every credential read that can wait a little (a health sweep's chunk,
    an agent's client config, the gateway): renew the OAuth grants of `needs` that expire
    within REFRESH_MARGIN, all together, at most `budget` seconds."""
    oauth_needs = [(s, a) for s, a in needs if s.auth_type == McpServer.AuthType.OAUTH]
    if not oauth_needs:
        return {}
    _machine_first_tokens(oauth_needs)
    due = Grant.objects.for_needs(
        [s.pk for s, _ in oauth_needs], [a.pk for _, a in oauth_needs if a is not None]
    ).filter(expires_at__lt=timezone.now() + REFRESH_MARGIN)
    return grants_refresh(grant_ids=list(due.values_list("id", flat=True)), budget=budget)


def _machine_first_tokens(needs: Sequence[Need]) -> None:
    """A client credentials server needs no human: its first token is fetched on first use."""
    from credentials.services.connect import oauth_client_credentials_fetch

    machines = [s for s, a in needs if a is None and s.oauth_config.machine]
    have = set(
        Grant.objects.filter(server__in=machines, agent__isnull=True).values_list(
            "server_id", flat=True
        )
    )
    for server in machines:
        if server.pk in have:
            continue
        try:
            oauth_client_credentials_fetch(server=server)
        except oauth.OAuthError as exc:
            logger.warning("client credentials grant for %s failed: %s", server.name, exc.code)
