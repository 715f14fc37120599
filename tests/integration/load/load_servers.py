"""Starting the embedded TF-Serving-compatible server for the load generator's integration tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.process.cleanup import parent_death_preexec

MODEL = "tiny"
METRICS_PATH = "/monitoring/prometheus/metrics"
_STARTUP_TIMEOUT_S = 240.0  # TF import plus model load on a busy shared 2-core machine
_GRPC = re.compile(r"Running gRPC ModelServer at [^:\s]+:(\d+)")
_REST = re.compile(r"Exporting HTTP/REST API at:[^:\s]+:(\d+)")


@dataclass(frozen=True)
class Server:
    grpc_target: str
    rest_url: str
    base_path: Path
    log: Path
    pid: int

    def target(self, protocol: str) -> str:
        return self.grpc_target if protocol == "grpc" else self.rest_url


@contextmanager
def embedded_server(base_path: Path, log: Path, *extra_flags: str) -> Iterator[Server]:
    """Start ``python -m pytest_tfserving.embedded`` on free ports; always stop it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable,
        "-m",
        "pytest_tfserving.embedded",
        "--port=0",
        "--rest_api_port=0",
        f"--model_name={MODEL}",
        f"--model_base_path={base_path}",
        *extra_flags,
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, preexec_fn=parent_death_preexec()
        )
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while True:
            text = log.read_text(errors="replace")
            grpc_port, rest_port = _GRPC.search(text), _REST.search(text)
            if grpc_port and rest_port:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedded server did not become ready (exit {proc.poll()}):\n{text[-3000:]}"
                )
            time.sleep(0.2)
        yield Server(
            f"127.0.0.1:{grpc_port.group(1)}",
            f"http://127.0.0.1:{rest_port.group(1)}",
            base_path,
            log,
            proc.pid,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def export_tiny(path: Path, **kwargs: int) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    return export_savedmodel(build_tiny_cnn(**kwargs), path)
