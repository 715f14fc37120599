"""A pytest run that holds containers (docker backend server + Redis) and is interrupted with
SIGINT (Ctrl-C) or SIGTERM (CI cancelling the job) leaves no container behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.images.recipe import ImageRefs

CHILD_TEST = """
import json, os, time
from pathlib import Path

import pytest
from testcontainers.core.labels import SESSION_ID

from pytest_tfserving.backends.docker import DockerBackend
from pytest_tfserving.services.redis_service import start_redis_container
from pytest_tfserving.serving.spec import ServerSpec


@pytest.fixture()
def redis():
    service = start_redis_container(os.environ["CHILD_REDIS_IMAGE"])
    yield service
    service.stop()


@pytest.fixture()
def server(tmp_path):
    spec = ServerSpec.single("tiny", Path(os.environ["CHILD_MODEL_DIR"]))
    running = DockerBackend(image=os.environ["CHILD_SERVER_IMAGE"]).start(spec, tmp_path, 120.0)
    yield running
    running.stop()


def test_holds_containers(redis, server):
    ids = [redis.container.get_wrapped_container().id, server.container.get_wrapped_container().id]
    Path(os.environ["CHILD_READY_FILE"]).write_text(json.dumps({"session": SESSION_ID, "ids": ids}))
    time.sleep(300)
"""


def default_sigint() -> None:
    """Ctrl-C as from a terminal, even when this run was started in the background with SIGINT
    ignored (children inherit that, and Python would then install no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_container(
    engine: Any, standin: ImageRefs, model_root: Path, tmp_path: Path, signum: int
) -> None:
    from testcontainers.core.labels import LABEL_SESSION_ID

    child = tmp_path / "test_child_holds_containers.py"
    child.write_text(CHILD_TEST)
    ready = tmp_path / "ready.json"
    env = {
        **os.environ,
        "CHILD_REDIS_IMAGE": standin.redis,
        "CHILD_SERVER_IMAGE": standin.server,
        "CHILD_MODEL_DIR": str(model_root / "tiny"),
        "CHILD_READY_FILE": str(ready),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cmd = [sys.executable, "-m", "pytest", str(child), "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    log = tmp_path / "child.log"
    held: dict[str, Any] | None = None
    left: list[Any] = []
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=default_sigint
        )
        try:
            deadline = time.monotonic() + 240
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"child run did not get its containers up:\n{log.read_text()[-4000:]}")
                time.sleep(0.25)
            held = json.loads(ready.read_text())
            running = {
                c.id
                for c in engine.containers.list(filters={"label": f"{LABEL_SESSION_ID}={held['session']}"})
            }
            assert set(held["ids"]) <= running
            proc.send_signal(signum)
            returncode = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            # Whatever happened (the child hung and was killed, an assertion failed), the child's
            # containers go: a failing test must not leave them running for the next session.
            if held is not None:
                session_label = f"{LABEL_SESSION_ID}={held['session']}"
                left = engine.containers.list(all=True, filters={"label": session_label})
                for container in left:
                    container.remove(force=True)
    assert held is not None
    names = [c.name for c in left]
    assert not left, f"left behind after {signal.Signals(signum).name}: {names}\n{log.read_text()[-3000:]}"
    # pytest's exit status for "interrupted", or death by the re-delivered SIGTERM
    expected = 2 if signum == signal.SIGINT else -signal.SIGTERM
    assert returncode == expected, log.read_text()[-3000:]
