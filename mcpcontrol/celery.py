"""The Celery app. Workers and beat load it with `celery -A mcpcontrol ...`."""

import os

from celery import Celery
from celery.signals import worker_init
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpcontrol.settings")

app = Celery("mcpcontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Task log lines carry task_id and the context (request_id, user_id) of whoever enqueued them.
app.steps["worker"].add(DjangoStructLogInitStep)


def _ensure_broker_folders() -> None:
    """The filesystem broker (embedded mode) needs its folders before anything is sent."""
    from pathlib import Path

    from django.conf import settings

    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _prepare(sender: Celery, **kwargs: object) -> None:
    _ensure_broker_folders()


@worker_init.connect
def _serve_probes_and_metrics(**kwargs: object) -> None:
    """A worker pod's /healthz, /readyz and /metrics, when MCPCONTROL_WORKER_HTTP_PORT is set."""
    from django.conf import settings

    if settings.MCPCONTROL_WORKER_HTTP_PORT:
        from mcpcontrol import worker_http

        worker_http.serve(settings.MCPCONTROL_WORKER_HTTP_PORT)
