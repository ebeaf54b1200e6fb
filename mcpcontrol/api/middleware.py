"""JSON errors for every /api/ path, whatever produced them.

DRF views answer through the exception handler and Django's 404/500 handlers answer JSON for
/api/ when debug is off; in debug Django renders its HTML pages instead, and a response
that is not JSON would leave a client parsing HTML. This rewrites any such error response.
"""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from mcpcontrol.api.errors import error_body

logger = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "payload_too_large", 500: "server_error"}  # fmt: skip
_MESSAGES = {404: "Not found.", 500: "Internal server error.", 405: "Method not allowed."}


class JsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        body = error_body(_CODES.get(status, "error"), _MESSAGES.get(status, "Request failed."))
        return JsonResponse(body, status=status)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
