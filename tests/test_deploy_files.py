"""The deployment files, checked without a Docker engine or a cluster (neither exists here).

Each file is parsed, and everything it asks the image to run is checked against the code:
management commands exist, module paths import, environment names are ones the settings
read, probe and healthcheck URLs resolve. docs/deploy.md says what this does not prove.
"""

import importlib
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from mcpcontrol.health import OPS_PATHS

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
APP_SERVICES = ("migrate", "web", "worker", "beat")
WEB_PORT, WORKER_PORT = 8000, 9100
# Programs of the official images the stack uses, by image name.
IMAGE_TOOLS = {"postgres": {"pg_isready"}, "redis": {"redis-cli"}, "mongo": {"mongosh"}}
_READS = re.compile(
    r"(env_(str|bool|int|secret)|os\.environ\.get|os\.environ\.setdefault)\(\s*\"([A-Z0-9_]+)\""
)


def names_read() -> tuple[set[str], set[str]]:
    """(every env name the settings or gunicorn.conf.py read, those read as *_FILE secrets)."""
    found = [
        m
        for source in (ROOT / "mcpcontrol" / "settings.py", ROOT / "gunicorn.conf.py")
        for m in _READS.finditer(source.read_text())
    ]
    secrets = {m.group(3) for m in found if m.group(2) == "secret"}
    return {m.group(3) for m in found} | {f"{s}_FILE" for s in secrets}, secrets


def check_url(url: str) -> None:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    check_path(parts.path, parts.port or 80)


def check_path(path: str, port: int) -> None:
    if port == WORKER_PORT:
        assert path in OPS_PATHS, f"the worker serves only {sorted(OPS_PATHS)}, not {path}"
        return
    assert port == WEB_PORT, f"nothing listens on {port}"
    try:
        resolve(path)
    except Resolver404:
        pytest.fail(f"{path} is not in the URL conf")


def check_command(argv: list[str]) -> None:
    """Fail unless the image can run argv: our entry points, with arguments that exist."""
    program, args = argv[0], argv[1:]
    if program == "sh":
        assert args[0] == "-c"
        for step in args[1].split("&&"):
            check_command(shlex.split(step))
    elif program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands(), f"no management command {args[1]!r}"
    elif program == "python" and args[0] == "-c":
        compile(args[1], "<healthcheck>", "exec")
        for url in re.findall(r"https?://[^'\" ]+", args[1]):
            check_url(url)
    elif program == "gunicorn":
        module = importlib.import_module(args[0])
        assert callable(module.application)
    elif program == "celery":
        assert args[0] == "-A"
        assert importlib.import_module(args[1]).celery_app.main == "mcpcontrol"
        assert args[2] in ("worker", "beat")
    else:
        pytest.fail(f"{program!r} is none of the image's entry points")


def test_the_image_has_the_entry_points_the_files_use():
    requirements = (ROOT / "requirements.txt").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^gunicorn==", requirements, re.M)
    assert re.search(r"^celery==", requirements, re.M)
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert re.search(r"apt-get install .*\bnodejs npm\b", dockerfile)  # npx stdio servers
    assert 'ENTRYPOINT ["tini", "--"]' in dockerfile
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    check_command(yaml.safe_load(cmd))


def test_the_image_runs_as_a_non_root_user():
    users = re.findall(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)

    assert users and users[-1] not in ("root", "0")


def test_the_build_context_leaves_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())

    wanted = {".venv", "db.sqlite3*", ".dev-*", ".run", "node_modules", ".git", ".mypy_cache"}
    assert wanted <= ignored


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_migrate_once_before_web_worker_and_beat(compose):
    services = compose["services"]

    assert shlex.split(services["migrate"]["command"][2]) == shlex.split(
        "python manage.py migrate --noinput && python manage.py ensure_admin"
        " && python manage.py ensure_schedules"
    )
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["restart"] == "on-failure"
    assert services["web"]["environment"]["WEB_CONCURRENCY"] == "${WEB_CONCURRENCY:-3}"
    assert services["mongo"]["profiles"] == ["mongo"]
    assert services["mongo"]["image"] == "mongo:7"


def test_compose_commands_and_healthchecks_exist(compose):
    for name, service in compose["services"].items():
        if name in APP_SERVICES:
            check_command(service["command"])
        test = service.get("healthcheck", {}).get("test")
        if not test:
            continue
        argv = shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]
        image = service.get("image", "").split(":")[0]
        if name in APP_SERVICES:
            check_command(argv)
        else:
            assert argv[0] in IMAGE_TOOLS[image], f"{name}: {argv[0]} is not in {image}"


def test_compose_sets_only_variables_the_settings_read(compose):
    read, secrets = names_read()
    for name in APP_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - read
        assert not unknown, f"{name} sets {unknown}, which nothing reads"
    for secret in compose["secrets"].values():
        assert secret["environment"] in secrets  # and reaches the app as NAME_FILE


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    documents = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def pod_specs(manifests) -> dict[str, dict]:
    return {
        name: doc["spec"]["template"]["spec"]
        for (kind, name), doc in manifests.items()
        if kind in ("Deployment", "Job")
    }


def test_k8s_has_the_migrate_job_deployments_service_and_config(manifests):
    assert set(manifests) == {
        ("ConfigMap", "mcpcontrol-config"),
        ("Secret", "mcpcontrol-secrets"),
        ("Job", "mcpcontrol-migrate"),
        ("Deployment", "mcpcontrol-web"),
        ("Deployment", "mcpcontrol-worker"),
        ("Deployment", "mcpcontrol-beat"),
        ("Service", "mcpcontrol-web"),
    }
    beat = manifests[("Deployment", "mcpcontrol-beat")]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}  # a rolling update would run two beats


def test_k8s_containers_run_our_entry_points_with_known_variables(manifests):
    read, _ = names_read()
    config = manifests[("ConfigMap", "mcpcontrol-config")]["data"]
    secret = manifests[("Secret", "mcpcontrol-secrets")]["stringData"]
    assert set(config) <= read and set(secret) <= read
    for name, spec in pod_specs(manifests).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            # args, not command: command would replace tini, the image's entrypoint
            assert "command" not in container, name
            check_command(container["args"])
            assert {e["name"] for e in container.get("env", [])} <= read, name
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"mcpcontrol-config", "mcpcontrol-secrets"}, name
            assert container["resources"]["requests"].keys() == {"cpu", "memory"}, name


@pytest.mark.parametrize("deployment", ["mcpcontrol-web", "mcpcontrol-worker"])
def test_k8s_probes_ask_healthz_and_readyz_on_a_served_port(manifests, deployment):
    [container] = manifests[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        check_path(get["path"], ports[get["port"]])


def test_k8s_service_reaches_the_web_pods(manifests):
    service = manifests[("Service", "mcpcontrol-web")]["spec"]
    web = manifests[("Deployment", "mcpcontrol-web")]["spec"]["template"]

    assert service["selector"].items() <= web["metadata"]["labels"].items()
    [container] = web["spec"]["containers"]
    assert service["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}


def test_deploy_doc_gives_the_commands_the_tests_run(compose, manifests):
    doc = (ROOT / "docs" / "deploy.md").read_text()

    for command in (
        "python manage.py migrate --noinput",
        "python manage.py ensure_admin",
        "python manage.py ensure_schedules",
        "python manage.py collectstatic --noinput",
        "gunicorn mcpcontrol.wsgi --bind 0.0.0.0:8000",
        "celery -A mcpcontrol worker --loglevel=INFO",
        "celery -A mcpcontrol beat --loglevel=INFO --pidfile=",
        "docker compose up -d",
        "kubectl wait --for=condition=complete job/mcpcontrol-migrate",
    ):
        assert command in doc, command
    assert " ".join(compose["services"]["web"]["command"]) in doc


def test_the_deploy_doc_lists_every_setting_an_operator_can_set():
    """An operator learns the knobs from docs/deploy.md's table; one missing there is one
    they cannot find without reading settings.py."""
    doc = (ROOT / "docs" / "deploy.md").read_text()
    names, _ = names_read()
    missing = sorted(n for n in names if not n.endswith("_FILE") and f"`{n}`" not in doc)
    assert missing == []
