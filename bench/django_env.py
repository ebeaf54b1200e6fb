"""The Django every bench runs in: the repository on sys.path, fixed bench-only keys, a
throwaway run folder, and a throwaway SQLite file unless DATABASE_URL names a database."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def django_setup(name: str) -> Path:
    """Set the environment (what the caller already set wins) and start Django."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpcontrol.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
    os.environ.setdefault(
        "MCPCONTROL_ENCRYPTION_KEYS", "J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU="
    )
    os.environ.setdefault("MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS", "1")
    os.environ.setdefault("MCPCONTROL_RUN_DIR", tempfile.mkdtemp(prefix=f"mcpcontrol-{name}-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    import django

    django.setup()
    return ROOT
