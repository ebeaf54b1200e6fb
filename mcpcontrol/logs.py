"""Structured logs: the processors LOGGING uses, one line per request, and context binding.

Settings wire these into structlog and into the stdlib formatter, so our lines and every
library's share one pipeline: request context in, secrets out, then JSON or console text.
Nothing here touches the database or the network: logging must never do I/O of its own.
"""

import contextvars
import os
import re
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, empty
from django_structlog.celery import signals as celery_signals
from structlog.typing import EventDict, Processor, WrappedLogger

from audit.context import current_request

# structlog, not logging.getLogger: the request line's fields are keys, not message text.
logger = structlog.get_logger("mcpcontrol.request")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]

# The request being served in this context, so every line can name its user (see add_user_id).
_http_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "mcpcontrol_http_request", default=None
)

# Query parameters that carry credentials or one-time OAuth values. The OAuth callback's
# whole query string goes too: its code and state must never reach a log line.
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:code|state|token|access_token|refresh_token|id_token|client_secret|password)=)"
    r"[^&;#\s\"']*"
)
_CALLBACK_QUERY = re.compile(r"(/oauth/callback\?)[^#\s\"']*")
REDACTED = "[redacted]"


def redact(value: str) -> str:
    """The text with secret query parameters (and the OAuth callback's query) masked."""
    if "=" not in value:
        return value
    value = _CALLBACK_QUERY.sub(rf"\1{REDACTED}", value)
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", value)


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_any(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_any(item) for item in value]
    return value


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in every rendered value, tracebacks included (runs after formatting)."""
    return {key: _redact_any(value) for key, value in event_dict.items()}


def _user_id(request: HttpRequest) -> int | str | None:
    # Only a user already loaded: resolving a lazy session user here would query the database.
    user = request.__dict__.get("user")
    if user is None or (isinstance(user, LazyObject) and user._wrapped is empty):
        return None
    pk = getattr(user, "pk", None)
    if pk is None or isinstance(pk, int | str):
        return pk
    return str(pk)  # MongoDB's ObjectId: a string in logs, as in the API


def add_user_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Name the request's user; read at each line, as DRF authenticates JWTs mid-request."""
    request = _http_request.get()
    if request is not None:
        event_dict.setdefault("user_id", _user_id(request))
    return event_dict


def add_pid(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Which process wrote the line: gunicorn workers and Celery children share one stream."""
    event_dict["pid"] = os.getpid()
    return event_dict


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    add_user_id,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_pid,
    structlog.processors.StackInfoRenderer(),
]


def render_processors(*, json: bool) -> list[Processor]:
    """The last steps of every line: format tracebacks, mask secrets, then render."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=20)
    )
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]


def bind_server_id(server_id: int | str) -> None:
    """Tag the remaining lines of this request or task with the server it works on."""
    structlog.contextvars.bind_contextvars(server_id=server_id)


class RequestLogMiddleware:
    """Write exactly one line per request, carrying the request id audit's middleware chose.

    Placed after audit.middleware.RequestContextMiddleware (one request id, not two) and
    before sessions and auth, so it also sees the responses those produce.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = current_request.get()
        # A sync worker serves request after request in one thread: start from nothing.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=context.request_id)
        token = _http_request.set(request)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            self._log(request, response, started, ip=context.ip)
            return response
        finally:
            _http_request.reset(token)
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float, ip: str | None) -> None:
        status = response.status_code
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        exc_info: ExcInfo | None = request.__dict__.pop("_mcpcontrol_exc_info", None)
        getattr(logger, level)(
            "request",
            method=request.method,
            path=request.get_full_path(),
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            ip=ip,
            user_id=_user_id(request),
            exc_info=exc_info,
        )


def _remember_exception(sender: object, request: HttpRequest | None = None, **kw: Any) -> None:
    # Django turns the exception into a 500 response before our middleware sees it; keep
    # the traceback for the request's line (django.request, which logged it, is silenced).
    if request is not None:
        exc_info = sys.exc_info()
        if exc_info[0] is not None:
            request.__dict__["_mcpcontrol_exc_info"] = exc_info


def _add_user_to_task_context(context: dict[str, Any], **kw: Any) -> None:
    # Tasks enqueued during a request also say whose request it was.
    request = _http_request.get()
    if request is not None:
        context.setdefault("user_id", _user_id(request))


got_request_exception.connect(_remember_exception, dispatch_uid="mcpcontrol.logs.exception")
celery_signals.modify_context_before_task_publish.connect(
    _add_user_to_task_context, dispatch_uid="mcpcontrol.logs.task_user"
)
