"""Starting the embedded TF-Serving-compatible server for the load generator's integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.embedded.launch import embedded_command, start_server

MODEL = "tiny"
METRICS_PATH = "/monitoring/prometheus/metrics"
_STARTUP_TIMEOUT_S = 240.0  # TF import plus model load on a busy shared 2-core machine


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
    argv = embedded_command(
        "--port=0",
        "--rest_api_port=0",
        f"--model_name={MODEL}",
        f"--model_base_path={base_path}",
        *extra_flags,
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    running = start_server(argv, timeout_s=_STARTUP_TIMEOUT_S, env=env, log_path=log)
    try:
        yield Server(running.grpc_target, running.rest_url, base_path, log, running.process.pid)
    finally:
        running.stop()


def export_tiny(path: Path, **kwargs: int) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    return export_savedmodel(build_tiny_cnn(**kwargs), path)
