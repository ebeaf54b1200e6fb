"""A stdio "server" that starts, writes its pid to argv[1], then never reads or answers."""

import sys
import time
from pathlib import Path

Path(sys.argv[1]).write_text(str(__import__("os").getpid()))
print("starting up...", file=sys.stderr, flush=True)
while True:
    time.sleep(60)
