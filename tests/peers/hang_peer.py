"""A stdio "server" that starts, writes its pid to argv[1], then never reads or answers.

With argv[2], it first spawns a child that inherits its stdin/stdout (as `npx` does with the
real server) and writes the child's pid there: a check must end that one too.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

if len(sys.argv) > 2:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(sys.argv[2]).write_text(str(child.pid))
Path(sys.argv[1]).write_text(str(os.getpid()))
print("starting up...", file=sys.stderr, flush=True)
while True:
    time.sleep(60)
