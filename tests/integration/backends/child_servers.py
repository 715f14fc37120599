"""Run by test_cleanup_signals.py in a child interpreter: start servers, print their pids, wait.

argv: WORKDIR KIND... where KIND is "redis" or "embedded:<model dir>".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    workdir = Path(sys.argv[1])
    pids: list[int] = []
    for kind in sys.argv[2:]:
        if kind == "redis":
            from pytest_tfserving.services.redis_service import start_local_redis

            pids.append(start_local_redis(workdir).pid)
        elif kind.startswith("embedded:"):
            from pytest_tfserving.backends.embedded import EmbeddedBackend
            from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

            spec = ServerSpec(models=(ModelSpec("tiny", Path(kind.split(":", 1)[1])),))
            server = EmbeddedBackend().start(spec, workdir, startup_timeout_s=120)
            pids.append(server.pid)
        else:
            raise SystemExit(f"unknown kind {kind}")
    print(json.dumps(pids), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
