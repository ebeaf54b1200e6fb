"""Suite-wide environment, loaded as a plugin (-p tests.pytest_env) before Django starts.

Fixed test keys make secrets reproducible and keep tests from writing a dev key.
"""

import atexit
import os
import shutil
import tempfile

# Set before Django reads settings. Test-only keys: never valid anywhere else.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")
os.environ.setdefault(
    "MCPCONTROL_ENCRYPTION_KEYS",
    "J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU=,3Oj8o8r3c6w1qUq0c2Yw5m0g5J6gk4b2yH6n9v7F0kA=",
)
os.environ.setdefault("MCPCONTROL_ALLOW_STDIO", "1")
os.environ.setdefault("MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS", "1")
# One run folder (file cache, broker) per test session, so parallel suites never share state.
_run_dir = tempfile.mkdtemp(prefix="mcpcontrol-test-run-")
atexit.register(shutil.rmtree, _run_dir, ignore_errors=True)
os.environ.setdefault("MCPCONTROL_RUN_DIR", _run_dir)
# WhiteNoise serves collected static files from here (empty: nothing is collected in tests).
os.makedirs(os.path.join(_run_dir, "static"))
os.environ.setdefault("MCPCONTROL_STATIC_ROOT", os.path.join(_run_dir, "static"))
