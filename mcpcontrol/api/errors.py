"""One error body for the whole API: {"error": "<code>", "message": "...", "fields"?: {...}}.

Every error under /api/ takes this shape: DRF exceptions through `exception_handler`,
Django's own 400/404/500 handlers, and (in debug, where Django renders HTML pages)
JsonErrorsMiddleware. The codes are one vocabulary, listed in docs/api.md; an error with
more to say (a version conflict) adds keys beside them.
"""

from typing import Any, cast

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response

# DRF exception class -> error code. Checked in order; subclasses first.
_CODES: tuple[tuple[type[exceptions.APIException], str], ...] = (
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "parse_error"),
    (exceptions.NotAuthenticated, "unauthorized"),
    (exceptions.AuthenticationFailed, "unauthorized"),
    (exceptions.PermissionDenied, "forbidden"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
)


class ApiError(exceptions.APIException):
    """An error with its own code and, optionally, extra keys in the body."""

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any):
        super().__init__(message or self.default_detail, code or self.default_code)
        self.error_code = code or str(self.default_code)
        self.extra = extra


class BadRequest(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."
    default_code = "bad_request"


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource was modified by another process."
    default_code = "conflict"


class BadGateway(ApiError):
    """An upstream (an MCP server, an authorization server) failed us, not the caller."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The upstream server failed."
    default_code = "upstream_error"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "If-Match does not match the current version."
    default_code = "precondition_failed"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict) and detail:
        return _message(next(iter(detail.values())))
    return str(detail)


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, ApiError):
        return exc.error_code
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return str(getattr(exc, "default_code", "error"))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, then reshaped to the shared body. Unknown errors stay 500 (Django's).

    1. Translate Django's exceptions (validation, 404, permission, size, integrity races).
    2. Let DRF build the response (status, headers such as Retry-After).
    3. Reshape its body to {"error", "message"[, "fields"]} plus an ApiError's extra keys.
    """
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, IntegrityError):
        # A uniqueness race lost after validation passed: the other writer got there first.
        exc = Conflict("A conflicting object was written concurrently; retry.")
    # Imported here: rest_framework.views loads the parser classes, and ours import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        first = next(iter(detail.items()), None)
        message = f"{first[0]}: {_message(first[1])}" if first else "Invalid input."
        response.data = error_body("validation_error", message, fields=detail)
    else:
        extra = exc.extra if isinstance(exc, ApiError) else {}
        response.data = error_body(_code_for(exc), _message(exc.detail), **extra)
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    # Django always passes the exception; the stub does not allow the None default.
    return defaults.bad_request(request, cast(Exception, exception))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
