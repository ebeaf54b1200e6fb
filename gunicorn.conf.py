"""gunicorn settings, read from the working directory (the repository root, /app in the image).

Workers come from WEB_CONCURRENCY; the command line may override any of these.
prometheus_client's multiprocess files are wiped at start and a dead worker's live gauges
removed, as prometheus_client's documentation asks for gunicorn.
"""

import os
import shutil
from pathlib import Path
from typing import Any

# The same folder settings uses: settings sets it for the workers, this sets it for the master.
_run_dir = Path(os.environ.get("MCPCONTROL_RUN_DIR", Path(__file__).resolve().parent / ".run"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_run_dir / "prometheus"))

# Sync workers: about 2-4 per core (docs/deploy.md has the measured numbers).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# One line per request comes from our RequestLogMiddleware; gunicorn's would be a second.
accesslog = None
# Health checks and OAuth round trips can take seconds; leave room for them.
timeout = 60
graceful_timeout = 30


def on_starting(server: Any) -> None:
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(folder, ignore_errors=True)  # counters of the previous run are not ours
    folder.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
