"""Celery tasks of the tokens app. Each takes ids and calls one service."""

from celery import shared_task

from tokens.oauth.errors import OAuthTransientError


@shared_task(name="tokens.tasks.oauth_tokens_refresh_due")
def oauth_tokens_refresh_due() -> int:
    """Beat (every MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS): enqueue the due refreshes."""
    from tokens import (
        services,
    )  # imported here so tasks and services never import each other at load

    return services.oauth_tokens_refresh_due()


# Only transient failures (AS down, 5xx, timeouts) are retried, with exponential backoff and
# jitter and a bound; invalid_grant returns normally after marking the grant for re-auth.
@shared_task(
    name="tokens.tasks.oauth_token_refresh",
    autoretry_for=(OAuthTransientError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def oauth_token_refresh(server_id: int, connection_id: int | None = None) -> bool:
    from tokens import services

    return services.oauth_token_refresh(server_id=server_id, connection_id=connection_id)


@shared_task(name="tokens.tasks.tokens_cleanup_expired")
def tokens_cleanup_expired() -> int:
    from tokens import services

    return services.tokens_cleanup_expired()
