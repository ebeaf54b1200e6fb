"""Errors of the OAuth protocol client. Messages never contain a secret."""

import httpx


class OAuthError(Exception):
    """The authorization server refused or answered something unusable (do not retry).

    `code` is the RFC 6749 error code when the server sent one (e.g. invalid_grant).
    """

    def __init__(self, code: str, message: str) -> None:
        # args = (code, message) so the error pickles: Celery ships it between processes.
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class OAuthTransientError(OAuthError):
    """The server was unreachable, timed out or answered 5xx/429: worth retrying later."""


def check_response(response: httpx.Response, *, what: str) -> dict[str, object]:
    """The JSON object of a response, or the matching OAuthError."""
    if response.status_code >= 500 or response.status_code == 429:
        raise OAuthTransientError("server_error", f"{what}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OAuthError(
            "invalid_response", f"{what}: HTTP {response.status_code}, not a JSON object"
        )
    if response.status_code >= 400:
        code = str(body.get("error") or "invalid_request")
        description = str(body.get("error_description") or f"HTTP {response.status_code}")
        raise OAuthError(code, f"{what}: {description}"[:500])
    return body


# Failures after the request may have reached the server: it may have acted on it (rotated a
# refresh token) without us hearing the answer.
_MAYBE_PROCESSED = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)


def transport_error(exc: httpx.HTTPError, *, what: str) -> OAuthTransientError:
    """ "no_answer" when the server may have processed the request, "unreachable" otherwise.

    The class name is enough: httpx messages may echo the URL but never a body or secret.
    """
    code = "no_answer" if isinstance(exc, _MAYBE_PROCESSED) else "unreachable"
    return OAuthTransientError(code, f"{what}: {type(exc).__name__}")
