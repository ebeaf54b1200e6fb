"""The dependency rules of the code base, read from the source (docs/architecture.md).

Apps depend on each other one way only: mcpcontrol.lib and audit at the bottom, then
servers, credentials (which builds on servers) and tokens. Each app's HTTP side (its api/,
admin and views) sits above its core and may use the shared API plumbing (mcpcontrol.api),
which itself only audits. The composition root (URL confs, settings, the Celery app, the
metrics and health views) may import anything and nothing imports it. Imports inside
functions count too: a cycle hidden in a function body is still a cycle. Services never
import tasks (a task calls a service, not back).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audit", "servers", "credentials", "tokens", "gateway", "mcpcontrol")
# Modules of the mcpcontrol package that compose the apps (they may import any of them).
COMPOSITION_ROOT = (
    "mcpcontrol.urls", "mcpcontrol.api.urls", "mcpcontrol.api.stats", "mcpcontrol.settings",
    "mcpcontrol.celery", "mcpcontrol.wsgi", "mcpcontrol.asgi", "mcpcontrol.metrics",
    "mcpcontrol.health", "mcpcontrol.logs", "mcpcontrol.worker_http", "mcpcontrol.management",
    "mcpcontrol.demo", "mcpcontrol.gateway", "mcpcontrol.console",
)  # fmt: skip
CORES = {
    "lib": set(),
    "audit": {"lib"},
    "api": {"lib", "audit"},  # the shared API plumbing (errors, pagination, JWT issuance)
    "servers": {"lib", "audit"},
    "credentials": {"lib", "audit", "servers"},
    "tokens": {"lib", "audit"},
    # The gateway reaches credentials only through servers' port, like servers itself.
    "gateway": {"lib", "audit", "servers"},
}
# Each app's HTTP side: its core, the plumbing, and what its core may use (with their HTTP).
HTTP = {
    f"{app}.http": {app, "api", *below, *(f"{b}.http" for b in below if b in ("servers",))}
    for app, below in CORES.items()
    if app not in ("lib", "api")
}
# Allowed dependencies between layers; anything else is a violation.
ALLOWED = {
    **CORES, **HTTP, "tokens.http": {*HTTP["tokens.http"], "credentials"},
    # /me/ composes the apps: an agent's gateway keys through gateway.services.
    "credentials.http": {*HTTP["credentials.http"], "gateway"},
}  # fmt: skip
HTTP_PARTS = ("api", "admin", "views", "urls", "filtersets")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or "migrations" in relative:
                continue
            yield _module(path), path


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every module `module` imports, at any depth of its source (function bodies too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def layer(module: str) -> str | None:
    """The layer a module of ours belongs to; "root" for the composition root; None if not ours."""
    if module.startswith(COMPOSITION_ROOT):
        return "root"
    if module.startswith("mcpcontrol.lib"):
        return "lib"
    if module.startswith("mcpcontrol.api"):
        return "api"
    top, _, rest = module.partition(".")
    if top == "mcpcontrol":
        return "root"
    if top not in CORES:
        return None
    return f"{top}.http" if rest.split(".")[0] in HTTP_PARTS else top


def _edges() -> list[tuple[str, str]]:
    return [(module, target) for module, path in _sources() for target in _imports(module, path)]


EDGES = _edges()


def test_the_import_graph_is_read():
    assert ("servers.services.health.targets", "servers.credential_port") in EDGES
    assert len(EDGES) > 500


def test_layers_depend_only_downwards():
    violations = sorted(
        f"{module} imports {target}"
        for module, target in EDGES
        if (src := layer(module)) not in (None, "root")
        and (dst := layer(target)) not in (None, src)
        and (dst == "root" or dst not in ALLOWED[src])
    )
    assert violations == []


def test_the_layer_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for module, target in EDGES:
        src, dst = layer(module), layer(target)
        if src and dst and src != dst and "root" not in (src, dst):
            graph.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph.get(start, ())
        )

    cycles = sorted(node for node in graph if reaches(node, node, {node}))
    assert cycles == []


def test_servers_reach_credentials_only_through_the_port():
    # The port module itself is servers' own (the interface); credentials installs it.
    offenders = [
        (m, t)
        for m, t in EDGES
        if (layer(m) or "").startswith("servers") and (layer(t) or "").startswith("credentials")
    ]
    assert offenders == []


def test_services_never_import_tasks():
    def is_(module: str, what: str) -> bool:
        return f".{what}" in f".{module}" and layer(module) not in (None, "root")

    offenders = sorted(
        f"{m} imports {t}" for m, t in EDGES if is_(m, "services") and is_(t, "tasks")
    )
    assert offenders == []
