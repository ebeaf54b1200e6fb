"""/me/: a signed-in user's own page, outside the admin, so a non-staff user can connect
their agents and take their client configs.

Everything here is scoped to `request.user`'s own agents (a superuser too: another user's
agent is a 404; administrators use the console). Writes are POST with Django's CSRF check
and go through the same services as the API and the admin; the OAuth flow started here ends
at /oauth/callback in this same session, so the stored grant is this user's.
"""

import posixpath
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from credentials import services
from credentials.oauth import OAuthError
from gateway import services as gateway_services
from gateway.models import AgentKey
from mcpcontrol.lib.loginguard import WINDOW_SECONDS, ThrottledAuthenticationForm
from mcpcontrol.lib.urlguard import BlockedUrl
from servers import services as server_services
from servers.credential_port import CredentialState, credentials
from servers.models import Agent, AgentConnection, McpServer

CONTENT_TYPES = {"json": "application/json", "toml": "application/toml"}
# Client config modes (docs/gateway.md): one entry per upstream, or the agent's gateway.
MODES = ("direct", "gateway")
# Lifetimes offered for a new gateway key, in days ("" = never expires).
KEY_LIFETIMES = ("", "30", "90", "365")


class UserLoginView(LoginView):
    """Django's login, with the admin's failed-login throttle (429 while locked)."""

    template_name = "credentials/me/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True
    next_page = "/me/"

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error("__all__", code="throttled"):
            response.status_code = 429
            response["Retry-After"] = str(WINDOW_SECONDS)
        return response


@dataclass
class ServerRow:
    """One server on an agent's page: its credential state in words and what may be done."""

    server: McpServer
    key: str
    state: CredentialState
    status: str
    can_connect: bool
    can_disconnect: bool
    can_set_key: bool
    variables: list[dict[str, Any]] = field(default_factory=list)


def _own_agent(request: HttpRequest, agent_id: str) -> Agent:
    # owner=request.user, not for_user(): /me/ shows only one's own agents, superusers too.
    return get_object_or_404(Agent, pk=agent_id, owner_id=request.user.pk)


def _usable_server(agent: Agent, server_id: str) -> McpServer:
    return get_object_or_404(McpServer.objects.usable_by(agent.owner), pk=server_id)


def _status(server: McpServer, state: CredentialState) -> str:
    if server.auth_type == McpServer.AuthType.NONE:
        return "no credential needed"
    if state.needs_reauth:
        return f"needs reconnecting: {state.reason}" if state.reason else "needs reconnecting"
    if state.has_secret:
        return (
            f"connected, expires {state.expires_at:%Y-%m-%d %H:%M} UTC"
            if state.expires_at
            else "connected"
        )
    return "not connected"


def _server_row(user: Any, agent: Agent, server: McpServer, key: str) -> ServerRow:
    target = server.grant_agent(agent)
    state = credentials().state(server=server, agent=target)
    # A shared grant acts for everyone: connecting it takes the right to change the server.
    allowed = target is not None or server_services.server_can_change(user=user, server=server)
    oauth = server.auth_type == McpServer.AuthType.OAUTH and not server.oauth_config.machine
    static = server.auth_type in (McpServer.AuthType.API_KEY, McpServer.AuthType.BEARER)
    have = set(services.variable_names(server=server, agent=agent))
    variables = [
        {"name": name, "title": spec.get("title") or name, "description": spec.get("description", ""),
         "required": bool(spec.get("required")), "is_set": name in have}
        for name, spec in sorted((server.custom_user_vars or {}).items())
    ]  # fmt: skip
    return ServerRow(
        server=server, key=key, state=state, status=_status(server, state),
        can_connect=oauth and allowed, can_disconnect=oauth and allowed and state.kind == "oauth",
        can_set_key=static and target is not None, variables=variables,
    )  # fmt: skip


@never_cache
@login_required
def me_index(request: HttpRequest) -> HttpResponse:
    """The user's agents, and a form to add one."""
    if request.method == "POST":
        return _agent_create(request)
    agents = Agent.objects.filter(owner_id=request.user.pk).order_by("name", "id")
    return render(request, "credentials/me/index.html", {"agents": agents})


def _agent_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    try:
        agent = server_services.agent_create(
            actor=request.user, owner=request.user, name=name,
            description=request.POST.get("description", "").strip(),
        )  # fmt: skip
    except (ValidationError, IntegrityError) as exc:
        messages.error(request, f"Cannot add the agent: {_words(exc)}")
        return HttpResponseRedirect(reverse("me"))
    messages.success(request, f"Added {agent.name}.")
    return HttpResponseRedirect(reverse("me-agent", args=[agent.pk]))


def _words(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return "an agent with that name exists already."


def _client_config(
    request: HttpRequest, agent: Agent, client: str, *, mode: str = "direct", key: str = ""
) -> dict[str, Any]:
    """The rendered config. Direct mode reveals secrets (mcp_config_build audits the read);
    gateway mode is the one gateway entry, with `key` (a key just created) or a placeholder."""
    if mode == "gateway":
        config = server_services.mcp_config_gateway(agent=agent, key=key)
    else:
        config = server_services.mcp_config_build(actor=request.user, agent=agent)
    return server_services.client_config_render(
        config=config, client=client, bridge=settings.MCPCONTROL_CONFIG_BRIDGE_REMOTE
    )


def _mode(value: str, agent: Agent) -> str:
    """The asked-for config mode, else the agent's own (gateway for new agents)."""
    return value if value in MODES else agent.config_mode


def _agent_page(
    request: HttpRequest, agent: Agent, *, client: str, mode: str, new_key: str = ""
) -> HttpResponse:
    """The agent's page. `new_key` is a gateway key created by this very request: shown
    here once (and put in the gateway config), never stored in the session or shown again."""
    servers = server_services.agent_servers(agent)
    keys = server_services.config_keys(servers)
    rows = [_server_row(request.user, agent, s, keys[s.pk]) for s in servers]
    context: dict[str, Any] = {
        "agent": agent, "rows": rows, "clients": list(server_services.CLIENTS),
        "client": client if client in server_services.CLIENTS else "", "mode": mode,
        "modes": MODES, "agent_keys": AgentKey.objects.filter(agent=agent),
        "new_key": new_key,
    }  # fmt: skip
    if context["client"]:
        context["config"] = _client_config(request, agent, client, mode=mode, key=new_key)
    return render(request, "credentials/me/agent.html", context)


@never_cache
@login_required
@require_GET
def me_agent(request: HttpRequest, agent_id: str) -> HttpResponse:
    """An agent: its servers with credential state and buttons, its variables, its gateway
    keys, and (with ?client=, and ?mode=direct or gateway) its client config, built only
    when asked for since each direct build is audited."""
    agent = _own_agent(request, agent_id)
    client, mode = request.GET.get("client", ""), _mode(request.GET.get("mode", ""), agent)
    return _agent_page(request, agent, client=client, mode=mode)


@never_cache
@login_required
@require_GET
def me_config_download(request: HttpRequest, agent_id: str) -> HttpResponse:
    """The client's file as an attachment named as the client expects it."""
    agent = _own_agent(request, agent_id)
    client = request.GET.get("client", "")
    if client not in server_services.CLIENTS:
        return HttpResponse("Unknown client.", status=400, content_type="text/plain")
    config = _client_config(request, agent, client, mode=_mode(request.GET.get("mode", ""), agent))
    response = HttpResponse(config["content"], content_type=CONTENT_TYPES[config["syntax"]])
    name = posixpath.basename(config["file_name"])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _back(agent: Agent) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("me-agent", args=[agent.pk]))


@login_required
@require_POST
def me_connect(request: HttpRequest, agent_id: str, server_id: str) -> HttpResponse:
    """Start the OAuth flow for the agent's (or the shared) grant; the browser comes back
    to this agent's page through /oauth/callback."""
    agent = _own_agent(request, agent_id)
    server = _usable_server(agent, server_id)
    row = _server_row(request.user, agent, server, "")
    if not row.can_connect:
        messages.error(request, f"You cannot connect {server.name} here.")
        return _back(agent)
    try:
        url = services.oauth_authorization_start(
            server=server, user=request.user, agent=server.grant_agent(agent),
            return_url=reverse("me-agent", args=[agent.pk]),
        )  # fmt: skip
    except (OAuthError, BlockedUrl) as exc:
        messages.error(request, f"Cannot connect {server.name}: {exc}")
        return _back(agent)
    return HttpResponseRedirect(url)


@login_required
@require_POST
def me_disconnect(request: HttpRequest, agent_id: str, server_id: str) -> HttpResponse:
    """Revoke and forget the grant the Connect button made."""
    agent = _own_agent(request, agent_id)
    server = _usable_server(agent, server_id)
    if not _server_row(request.user, agent, server, "").can_disconnect:
        messages.error(request, f"You cannot disconnect {server.name} here.")
        return _back(agent)
    try:
        services.oauth_disconnect(
            server=server, agent=server.grant_agent(agent), actor=request.user
        )
    except OAuthError as exc:
        messages.error(request, f"Cannot disconnect {server.name}: {exc}")
        return _back(agent)
    messages.success(request, f"Disconnected {server.name}.")
    return _back(agent)


@login_required
@require_POST
def me_variables(request: HttpRequest, agent_id: str, server_id: str) -> HttpResponse:
    """Set the agent's values of the server's variables: a filled field sets, a ticked
    "clear" removes, an empty field keeps the stored value (it is never shown back)."""
    agent = _own_agent(request, agent_id)
    server = _usable_server(agent, server_id)
    values: dict[str, str | None] = {}
    for name in server.custom_user_vars or {}:
        if request.POST.get(f"clear_{name}"):
            values[name] = None
        elif value := request.POST.get(f"var_{name}", ""):
            values[name] = value
    try:
        services.variables_set(server=server, values=values, actor=request.user, agent=agent)
    except ValidationError as exc:
        messages.error(request, f"Cannot save {server.name}'s variables: {_words(exc)}")
        return _back(agent)
    messages.success(request, f"Saved {server.name}'s variables.")
    return _back(agent)


@login_required
@require_POST
def me_key(request: HttpRequest, agent_id: str, server_id: str) -> HttpResponse:
    """Store the agent's own API key or bearer token for a per_agent server ("forget" drops
    it). The value is write-only: it is never shown back, only whether one is stored."""
    agent = _own_agent(request, agent_id)
    server = _usable_server(agent, server_id)
    if not _server_row(request.user, agent, server, "").can_set_key:
        messages.error(request, f"{server.name} takes no key of this agent's own.")
        return _back(agent)
    if request.POST.get("forget"):
        connection = AgentConnection.objects.filter(agent=agent, server=server).first()
        if connection is not None:
            server_services.connection_delete(actor=request.user, connection=connection)
        messages.success(request, f"Forgot {agent.name}'s key for {server.name}.")
        return _back(agent)
    key = request.POST.get("key", "").strip()
    if not key:  # an empty secret means "forget" to the service: not what Save asked for
        messages.error(request, f"Enter a key for {server.name}, or use Forget key.")
        return _back(agent)
    try:
        server_services.connection_set(
            actor=request.user, agent=agent, server=server, access_token=key
        )
    except ValidationError as exc:
        messages.error(request, f"Cannot save the key for {server.name}: {_words(exc)}")
        return _back(agent)
    messages.success(request, f"Saved {agent.name}'s key for {server.name}.")
    return _back(agent)


@never_cache
@login_required
@require_POST
def me_agent_key_create(request: HttpRequest, agent_id: str) -> HttpResponse:
    """Create a gateway key (gateway.services, audited as on the API) and answer the page
    itself rather than a redirect: the raw key exists only in this response, shown once,
    with the chosen client's gateway config carrying it."""
    agent = _own_agent(request, agent_id)
    name = request.POST.get("name", "").strip()
    days = request.POST.get("expires_days", "")
    if days not in KEY_LIFETIMES:
        messages.error(request, "Choose one of the offered lifetimes.")
        return _back(agent)
    expires_at = timezone.now() + timedelta(days=int(days)) if days else None
    try:
        key, raw = gateway_services.agent_key_create(
            actor=request.user, agent=agent, name=name, expires_at=expires_at
        )
    except ValidationError as exc:
        messages.error(request, f"Cannot create the key: {_words(exc)}")
        return _back(agent)
    messages.success(request, f"Created the key {key.name}. Copy it now: it is not shown again.")
    client = request.POST.get("client", "")
    client = client if client in server_services.CLIENTS else "generic"
    return _agent_page(request, agent, client=client, mode="gateway", new_key=raw)


@login_required
@require_POST
def me_agent_key_revoke(request: HttpRequest, agent_id: str, key_id: str) -> HttpResponse:
    """Revoke a gateway key: it stops at the gateway's next request (kept for the record)."""
    agent = _own_agent(request, agent_id)
    key = get_object_or_404(AgentKey, pk=key_id, agent=agent)
    gateway_services.agent_key_revoke(actor=request.user, key=key)
    messages.success(request, f"Revoked the key {key.name}.")
    return _back(agent)
