"""Request context (IP, request id) for audit rows, carried in a contextvar.

Services get it without every call site threading the request through; workers have none.
"""

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    request_id: str = ""


current_request: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "mcpcontrol_request",
    default=RequestContext(),  # noqa: B039 - frozen dataclass, never mutated
)
