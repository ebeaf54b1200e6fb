"""GET /oauth/callback: where the authorization server sends the user's browser back."""

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from credentials import services
from credentials.oauth import OAuthError

logger = logging.getLogger(__name__)

_PAGE = (
    "<!doctype html><html><head><title>{title}</title></head><body>"
    '<h1 id="oauth-result">{title}</h1><p>{message}</p></body></html>'
)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, *, code: str, message: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": code, "message": message}, status=status)
    body = format_html(_PAGE, title="Connection failed", message=f"{message} ({code})")
    return HttpResponse(body, status=status)


@never_cache
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Finish the connect flow. The state is bound to the signed-in user who started it, so
    a link someone else started cannot attach their grant to this account (login CSRF).

    1. Refuse an anonymous browser or a callback without a state.
    2. Complete the flow (consume the state, exchange the code, store the grant).
    3. Answer JSON, or go back to the page that started the flow, or a small page.
    """
    state = request.GET.get("state", "")
    if not request.user.is_authenticated:
        return _error(
            request, code="login_required", message="Sign in, then connect again.", status=401
        )
    if not state:
        return _error(
            request, code="invalid_state", message="The callback carried no state.", status=400
        )
    try:
        flow = services.oauth_authorization_complete(
            state=state,
            code=request.GET.get("code", ""),
            user=request.user,
            error=request.GET.get("error", ""),
            error_description=request.GET.get("error_description", ""),
        )
    except OAuthError as exc:
        logger.info("OAuth callback failed: %s", exc.code)
        return _error(request, code=exc.code, message=exc.message, status=400)
    if _wants_json(request):
        # Ids are strings, as everywhere in the API (an ObjectId on MongoDB, docs/storage.md).
        agent_id = None if flow.agent_id is None else str(flow.agent_id)
        return JsonResponse(
            {"status": "connected", "server_id": str(flow.server_id), "agent_id": agent_id}
        )
    if flow.return_url and url_has_allowed_host_and_scheme(
        flow.return_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        messages.success(request, f"Connected {flow.server.name}.")
        return HttpResponseRedirect(flow.return_url)
    body = format_html(_PAGE, title="Connected", message=f"{flow.server.name} is connected.")
    return HttpResponse(body)
