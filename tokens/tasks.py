"""Celery tasks of the tokens app. Each takes ids and calls one service."""

from celery import shared_task


@shared_task(name="tokens.tasks.tokens_cleanup_expired")
def tokens_cleanup_expired() -> int:
    """Beat (hourly): delete stored tokens past their expiry."""
    from tokens import services  # imported here so tasks and services never import each other

    return services.tokens_cleanup_expired()
