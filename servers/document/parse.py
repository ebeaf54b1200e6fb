"""Reading a server document (request body or registry file) into model field values.

1. Type-check it against the shapes (servers.document.shapes) and refuse unknown keys,
   naming them: nothing a client sends is silently dropped.
2. Translate each concept (identity, transport, auth, OAuth, access, options, catalog,
   tools) from whichever seed's spelling was sent; two spellings of one value must agree.
3. Remember which key each model field came from, so a model error names what was sent.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from mcpcontrol.lib.ids import is_id
from servers.document.shapes import (
    AUTH_ALIASES,
    CATALOG_DEFAULTS,
    OAUTH_KEY_ALIASES,
    READ_ONLY_KEYS,
    STATUS_ENABLED,
    TRANSPORT_ALIASES,
    AuthenticationShape,
    ConnectionDetailsShape,
    OAuthShape,
    ServerShape,
    TransportShape,
    VariableShape,
)
from servers.models import Agent, McpServer, OAuthSettings

UNSET: Any = object()  # "not in the document": different from null


class DocumentError(Exception):
    """Bad input: `errors` maps the key path as sent (e.g. "transport.url") to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class ServerInput:
    """What a document asks for: model field values, the static credential, the version."""

    fields: dict[str, Any] = field(default_factory=dict)
    auth_secret: Any = UNSET  # str to store, None to remove, UNSET to keep
    version: int | None = None
    sent_as: dict[str, str] = field(default_factory=dict)  # model field -> key as sent

    def put(self, model_field: str, value: Any, key: str) -> None:
        self.fields[model_field] = value
        self.sent_as[model_field] = key

    def api_errors(self, model_errors: dict[str, list[str]]) -> dict[str, list[str]]:
        """Model field errors keyed by what the client sent (derived values: by the name)."""
        renamed: dict[str, list[str]] = {}
        for name, messages in model_errors.items():
            key = self.sent_as.get(name)
            if key is None and name in _DERIVED_FROM:
                source = _DERIVED_FROM[name]  # reported where the client sent it, if it did
                key = self.sent_as.get(source) or _UNSENT_KEYS[source]
                messages = [f"{m} (derived from {key}: send {name} to choose it)" for m in messages]
            renamed.setdefault(key or name, []).extend(messages)
        return renamed


# A model field the document did not name is derived from this one (path from the name).
_DERIVED_FROM = {"path": "name", "alias": "name", "owner": "owner"}
# The key of a model field the document did not send either (the owner: the caller).
_UNSENT_KEYS = {"name": "server_name", "owner": "user_id"}

_NESTED: dict[str, type[serializers.Serializer[Any]]] = {
    "transport": TransportShape,
    "connection_details": ConnectionDetailsShape,
    "oauth": OAuthShape,
}


def _unknown_keys(
    data: dict[str, Any], shape: serializers.Serializer[Any], path: str
) -> Iterator[str]:
    allowed = set(shape.fields) | (READ_ONLY_KEYS if not path else set())
    if isinstance(shape, OAuthShape):
        allowed |= set(OAUTH_KEY_ALIASES)
    for key, value in data.items():
        where = f"{path}{key}"
        if key not in allowed:
            yield where
        elif key in _NESTED and isinstance(value, dict):
            yield from _unknown_keys(value, _NESTED[key](), f"{where}.")
        elif key == "authentication" and isinstance(value, dict):
            yield from _unknown_keys(value, AuthenticationShape(), f"{where}.")
        elif key == "custom_user_vars" and isinstance(value, dict):
            for name, spec in value.items():
                if isinstance(spec, dict):
                    yield from _unknown_keys(spec, VariableShape(), f"{where}.{name}.")


def _flatten(detail: Any, path: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{path}{key}." if path or key else ""))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    if messages and all(isinstance(m, dict) for m in messages):
        return _flatten(messages[0], path)
    return {path.rstrip(".") or "non_field_errors": [str(m) for m in messages]}


def _checked(shape: serializers.Serializer[Any], data: Any, path: str) -> dict[str, Any]:
    """Validated data of `data` against `shape`, or DocumentError with dotted key paths."""
    if not isinstance(data, dict):
        raise DocumentError({path.rstrip(".") or "(document)": ["must be a JSON object"]})
    unknown = sorted(_unknown_keys(data, shape, path))
    if unknown:
        raise DocumentError({key: ["Unknown field: not in seed 000, 003 or 004, nor ours (see docs/api.md)."] for key in unknown})  # fmt: skip
    shape.initial_data = data
    if not shape.is_valid():
        raise DocumentError(_flatten(shape.errors, path))
    return dict(shape.validated_data)


class _Reader:
    """Reads one document into a ServerInput. One method per concept, in document order."""

    def __init__(self, data: dict[str, Any], raw: dict[str, Any], current: McpServer | None):
        self.data, self.raw, self.current = data, raw, current
        self.out = ServerInput()
        self.errors: dict[str, list[str]] = {}

    def one(self, model_field: str, candidates: list[tuple[str, Any]]) -> None:
        """Take a value sent under one of several keys; differing values are an error."""
        sent = [(key, value) for key, value in candidates if value is not UNSET]
        if not sent:
            return
        values = {repr(value) for _, value in sent}
        if len(values) > 1:
            keys = " and ".join(key for key, _ in sent)
            self.errors[sent[0][0]] = [f"{keys} say different things: send one of them."]
            return
        key, value = sent[0]
        self.out.put(model_field, value, key)

    def get(self, key: str, source: dict[str, Any] | None = None) -> Any:
        return (self.data if source is None else source).get(key, UNSET)

    def identity(self) -> None:
        self.one("name", [("server_name", self.get("server_name")), ("name", self.get("name"))])
        for key in ("description", "path", "alias", "icon_path", "tags"):
            self.one(key, [(key, self.get(key))])

    def transport(self) -> None:
        transport = self._transport_kind()
        details: dict[str, Any] = self.data.get("connection_details") or {}
        self.one("url", [("transport.url", self.get("url", transport)),
                         ("url", self.get("url")), ("proxy_pass_url", self.get("proxy_pass_url")),
                         ("connection_details.url", self.get("url", details))])  # fmt: skip
        for key in ("command", "args", "env", "cwd"):
            self.one(key, [(f"transport.{key}", self.get(key, transport)), (key, self.get(key)),
                           (f"connection_details.{key}", self.get(key, details))])  # fmt: skip
        self.one("stderr", [("transport.stderr", self.get("stderr", transport)),
                            ("stderr", self.get("stderr"))])  # fmt: skip
        self.one("headers", [("transport.headers", self.get("headers", transport)),
                             ("headers", self.get("headers")),
                             ("custom_headers", self.get("custom_headers")),
                             ("connection_details.headers", self.get("headers", details))])  # fmt: skip
        for name in ("url", "command", "cwd", "stderr", "args", "env", "headers"):
            if name in self.out.fields and self.out.fields[name] is None:
                self.out.fields[name] = {"args": [], "env": {}, "headers": {}}.get(name, "")
        if self.out.fields.get("stderr") == "":
            self.out.fields["stderr"] = McpServer.Stderr.IGNORE

    def _transport_kind(self) -> dict[str, Any]:
        """Read the transport type (seed 004's object, 000's server_type, our names); return
        the checked transport object (empty when it was not sent as one)."""
        nested = self.raw.get("transport")
        kind_keys = [("transport_type", self.get("transport_type")),
                     ("server_type", self.get("server_type"))]  # fmt: skip
        transport: dict[str, Any] = {}
        if isinstance(nested, str):  # our v1 spelling: "transport": "sse"
            kind_keys.append(("transport", nested))
        elif isinstance(nested, dict):
            transport = _checked(TransportShape(), nested, "transport.")
            kind_keys.append(("transport.type", transport.get("type", UNSET)))
        elif nested is not None and "transport" in self.raw:
            self.errors["transport"] = ["must be an object (seed 004) or a transport name"]
        for key, kind in kind_keys:
            if kind is not UNSET and kind not in TRANSPORT_ALIASES:
                self.errors[key] = [f"unknown transport {kind!r}"]
        self.one("transport_type", [(k, TRANSPORT_ALIASES.get(v, v) if v is not UNSET else UNSET)
                                    for k, v in kind_keys])  # fmt: skip
        return transport

    def auth(self) -> None:
        authentication = (self.data.get("connection_details") or {}).get("authentication") or {}
        self._auth_type(authentication)
        prefix = self.get("prefix", authentication)
        self.one("header_name", [("auth_header_name", self.get("auth_header_name")),
                                 ("connection_details.authentication.headerName",
                                  self.get("headerName", authentication))])  # fmt: skip
        self.one("prefix", [("auth_prefix", self.get("auth_prefix")),
                            ("connection_details.authentication.prefix",
                             "" if prefix is None else prefix)])  # fmt: skip
        if self.out.fields.get("header_name", "") is None:
            self.out.fields["header_name"] = ""
        self._auth_secret(authentication)
        self.one("credential_mode", [("credential_mode", self.get("credential_mode"))])
        self.one("share_credential", [("share_credential", self.get("share_credential"))])
        self.probe_agent()

    def _auth_type(self, authentication: dict[str, Any]) -> None:
        kind = authentication.get("type", UNSET)
        self.one("auth_type", [("auth_type", AUTH_ALIASES.get(self.get("auth_type"), UNSET)),
                               ("connection_details.authentication.type",
                                AUTH_ALIASES.get(kind, UNSET))])  # fmt: skip
        requires = self.get("requires_oauth")
        chosen = self.out.fields.get("auth_type", UNSET)
        if requires is True and chosen not in (UNSET, McpServer.AuthType.OAUTH):
            self.errors["requires_oauth"] = [f"requires_oauth is true but auth_type is {chosen}"]
        elif requires is True:
            self.out.put("auth_type", McpServer.AuthType.OAUTH, "requires_oauth")
        elif requires is False and chosen is UNSET and self._was_oauth_or_new():
            self.out.put("auth_type", McpServer.AuthType.NONE, "requires_oauth")

    def _auth_secret(self, authentication: dict[str, Any]) -> None:
        secrets = [
            ("auth_token", self.get("auth_token")),
            ("connection_details.authentication.key", self.get("key", authentication)),
            ("connection_details.authentication.token", self.get("token", authentication)),
        ]
        sent = [(k, v) for k, v in secrets if v is not UNSET]
        if len({v for _, v in sent}) > 1:
            self.errors[sent[0][0]] = ["two different credentials were sent: send one"]
        elif sent:
            self.out.auth_secret = sent[0][1] or None
        if authentication.get("type") == "none":
            self.out.auth_secret = None  # seed 000: "none" means no credential is kept

    def _was_oauth_or_new(self) -> bool:
        return self.current is None or self.current.auth_type == McpServer.AuthType.OAUTH

    def probe_agent(self) -> None:
        agent_id = self.get("probe_agent_id")
        if agent_id is UNSET:
            return
        agent = None
        if agent_id is not None:
            agent = Agent.objects.filter(pk=agent_id).first() if is_id(agent_id) else None
            if agent is None:
                self.errors["probe_agent_id"] = ["No such agent."]
                return
        self.out.put("probe_agent", agent, "probe_agent_id")

    def oauth(self) -> None:
        raw = self.raw.get("oauth", UNSET)
        flat = {"authorization_url": self.get("oauth_authorization_url"),
                "token_url": self.get("oauth_token_url"), "client_id": self.get("oauth_client_id"),
                "scope": self.get("oauth_scopes"),
                "client_secret": self.get("oauth_client_secret")}  # fmt: skip
        flat = {k: v for k, v in flat.items() if v is not UNSET}
        if raw is UNSET and not flat:
            self._oauth_side_fields()
            return
        base = dict(self.current.oauth) if self.current is not None and raw is UNSET else {}
        nested = {} if raw in (UNSET, None) else _checked(OAuthShape(), raw, "oauth.")
        settings = {OAUTH_KEY_ALIASES.get(k, k): v for k, v in {**nested, **flat}.items()}
        if "client_secret" in settings:
            self.out.put("oauth_client_secret", settings.pop("client_secret") or None, "oauth")
        elif raw is None:
            self.out.put("oauth_client_secret", None, "oauth")
        merged = {**base, **settings}
        self.out.put("oauth", _clean_oauth(merged), "oauth")
        self._oauth_side_fields()

    def _oauth_side_fields(self) -> None:
        for key in ("oauth_headers", "oauth_metadata", "custom_user_vars"):
            value = self.get(key)
            self.one(key, [(key, {} if value is None else value)])
        if isinstance(self.out.fields.get("custom_user_vars"), dict):
            self.out.fields["custom_user_vars"] = {
                name: {k: v for k, v in dict(spec).items() if v is not None}
                for name, spec in self.out.fields["custom_user_vars"].items()
            }

    def access(self) -> None:
        self.one("scope", [("scope", self.get("scope"))])
        users = get_user_model().objects
        self._relation("owner", "user_id", self.get("user_id"), lambda v: users.filter(pk=v))
        self._relation("owner", "owner", self.get("owner"), lambda v: users.filter(username=v))
        groups = Group.objects
        self._relation("group", "group_id", self.get("group_id"), lambda v: groups.filter(pk=v))
        self._relation("group", "group", self.get("group"), lambda v: groups.filter(name=v))

    def _relation(self, model_field: str, key: str, value: Any, lookup: Any) -> None:
        if value is UNSET:
            return
        row = None
        if value is not None:
            if key.endswith("_id") and not is_id(str(value)):
                self.errors[key] = ["No such id."]
                return
            row = lookup(value).first()
            if row is None:
                self.errors[key] = [f"No such {model_field if model_field != 'owner' else 'user'}."]
                return
        self.one(model_field, [(key, row)])

    def options(self) -> None:
        self.one("is_enabled", [("enabled", self.get("enabled")),
                                ("is_enabled", self.get("is_enabled")),
                                ("status", STATUS_ENABLED.get(self.get("status"), UNSET)
                                 if self.get("status") is not UNSET else UNSET)])  # fmt: skip
        if self.out.fields.get("is_enabled", UNSET) is None:
            del self.out.fields["is_enabled"]  # status "error": the health engine's to set
        for key in ("startup", "chat_menu", "server_instructions", "mcp_options", "capabilities"):
            self.one(key, [(key, self.get(key))])
        self.one("timeout_ms", [("timeout", self.get("timeout")),
                                ("timeout_ms", self.get("timeout_ms"))])  # fmt: skip
        self.one("init_timeout_ms", [("init_timeout", self.get("init_timeout")),
                                     ("init_timeout_ms", self.get("init_timeout_ms"))])  # fmt: skip

    def catalog(self) -> None:
        """Catalog keys are kept as sent. A null unsets a key, and so does the value our
        detail shows for a key never set: a GET body sent back must not store the defaults."""
        keys = ("num_stars", "is_python", "license", "auth_provider", "organization_id",
                "supported_transports", "schema_version")  # fmt: skip
        sent = {key: self.data[key] for key in keys if key in self.data}
        if not sent:
            return
        base = dict(self.current.catalog) if self.current is not None else {}
        catalog = dict(base)
        for key, value in sent.items():
            if value is None:
                catalog.pop(key, None)
            elif key in base or value != self._catalog_default(key):
                catalog[key] = value
        self.out.put("catalog", catalog, next(iter(sent)))

    def _catalog_default(self, key: str) -> Any:
        if key == "supported_transports":  # the detail shows the server's own transport
            current = str(McpServer.Transport.STREAMABLE_HTTP)  # the model's default
            current = self.current.transport_type if self.current is not None else current
            return [self.out.fields.get("transport_type", current)]
        return CATALOG_DEFAULTS.get(key, UNSET)

    def tools(self) -> None:
        self.one("tools", [("tool_list", self.get("tool_list")), ("tools", self.get("tools")),
                           ("discovered_tools", self.get("discovered_tools"))])  # fmt: skip
        functions = self.get("tool_functions")
        if functions not in (UNSET, None):
            self._tool_functions(_tools_from_functions(functions))
        self.one("num_tools", [("num_tools", self.get("num_tools"))])
        if "tools" in self.out.fields and "num_tools" not in self.out.fields:
            self.out.fields["num_tools"] = len(self.out.fields["tools"])

    def _tool_functions(self, as_tools: list[dict[str, Any]]) -> None:
        """Seed 004 stores tool_functions beside `tools` as a parsed view of the same tools
        (its Example 1 words their descriptions differently), and our detail derives it from
        the tool list: with a list sent it only has to name the same tools."""
        if "tools" not in self.out.fields:
            self.out.put("tools", as_tools, "tool_functions")
            return
        listed = {_tool_name(tool) for tool in self.out.fields["tools"]}
        if {tool["name"] for tool in as_tools} != listed:  # both sets of str
            key = self.out.sent_as["tools"]
            self.errors["tool_functions"] = [f"names other tools than {key}: send one of them."]


def _clean_oauth(settings: dict[str, Any]) -> dict[str, Any]:
    """The OAuth settings as stored: no nulls or empties, lists as lists."""
    known = set(OAuthSettings.__dataclass_fields__) - {"URL_KEYS"}
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in settings.items()
        if key in known and value not in (None, "", [], ())
    }


def _tool_name(tool: Any) -> str:
    """A tool's name: seed 003 lists names, seeds 004 and MCP list {name, ...} objects."""
    return str(tool.get("name") if isinstance(tool, dict) else tool)


def _tools_from_functions(functions: dict[str, Any]) -> list[dict[str, Any]]:
    """Seed 004's tool_functions ({name: {type, function{name, description, parameters}}})
    as MCP tool objects."""
    tools = []
    for name, item in functions.items():
        function = item.get("function", {}) if isinstance(item, dict) else {}
        tools.append({
            "name": str(function.get("name") or name),
            "description": str(function.get("description") or ""),
            "inputSchema": function.get("parameters") or {"type": "object"},
        })  # fmt: skip
    return tools


def parse(body: Any, *, current: McpServer | None = None) -> ServerInput:
    """Read a server document; `current` is the server a PATCH changes (None: a new one).

    Raises DocumentError naming each bad key as it was sent.
    """
    data = _checked(ServerShape(), body, "")
    reader = _Reader(data, body, current)
    for step in (reader.identity, reader.transport, reader.auth, reader.oauth, reader.access,
                 reader.options, reader.catalog, reader.tools):  # fmt: skip
        try:
            step()
        except DocumentError as exc:
            reader.errors.update(exc.errors)
    if reader.errors:
        raise DocumentError(reader.errors)
    reader.out.version = data.get("version")
    return reader.out
