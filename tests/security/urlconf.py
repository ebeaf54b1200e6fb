"""Every URL pattern of the URL conf, as a template (`api/v1/servers/<pk>`) with its view's
methods, so the figures cover endpoints added later without a hand-kept list."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

WRITE_METHODS = ("post", "put", "patch", "delete")
HTTP_METHODS = ("get", *WRITE_METHODS)


@dataclass(frozen=True)
class Endpoint:
    """One URL pattern: its template (parameters as `<name>`) and the methods its view has."""

    template: str
    methods: tuple[str, ...]
    name: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"<(\w+)>", self.template)

    def path(self, values: dict[str, str]) -> str:
        return "/" + re.sub(r"<(\w+)>", lambda m: values[m.group(1)], self.template)


def _regex_to_template(regex: str) -> str:
    """`^servers/(?P<pk>(?:grant-)?\\d{1,18})$` -> `servers/<pk>` (groups may nest)."""
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name = regex[i + 4 : regex.index(">", i)]
            depth, j = 0, i
            while True:
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append(f"<{name}>")
            i = j
        else:
            out.append(regex[i])
            i += 1
    return "".join(out).lstrip("^").rstrip("$").replace("\\", "")


def _template(pattern: Any) -> str:
    text = str(pattern)
    if "(?P<" in text or text.startswith("^") or text.endswith("$"):
        return _regex_to_template(text)
    return re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", text)


def _methods(callback: Any) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route: exactly the methods it maps
        return tuple(m for m in HTTP_METHODS if m in actions)
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if cls is not None:
        return tuple(m for m in HTTP_METHODS if hasattr(cls, m))
    return ("get", "post")  # a function view: it decides what it answers


def walk(resolver: Any = None, prefix: str = "") -> Iterator[Endpoint]:
    """Every URLPattern under `resolver` (the root URL conf by default), depth first."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry, prefix + _template(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield Endpoint(prefix + _template(entry.pattern), _methods(entry.callback),
                           entry.name or "")  # fmt: skip


def endpoints() -> list[Endpoint]:
    """Each template once (a later duplicate, e.g. the admin's own login/, is unreachable)."""
    seen: dict[str, Endpoint] = {}
    for endpoint in walk():
        seen.setdefault(endpoint.template, endpoint)
    return list(seen.values())
