"""Backend ``embedded``: our TF-Serving-compatible server (``python -m pytest_tfserving.embedded``).

Needs no Docker and no tensorflow_model_server: it runs wherever the tests run. It binds port 0 and
we read the real ports from its readiness lines (the same lines tensorflow_model_server prints).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from pytest_tfserving.backends.layout import host_model_path, render_into
from pytest_tfserving.backends.local import GRPC_READY, REST_READY, LocalServer, endpoints_for
from pytest_tfserving.backends.process import ManagedProcess
from pytest_tfserving.process.readiness import models_available
from pytest_tfserving.serving.spec import ServerSpec


def _tf_version() -> str:
    try:
        return metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: unbuffered output (readiness lines arrive at once), quiet TF C++ logs."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class EmbeddedBackend:
    """Starts the embedded server as a child process of this interpreter (or ``python``)."""

    name = "embedded"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> LocalServer:
        rundir = Path(tempfile.mkdtemp(prefix="embedded-", dir=workdir))
        flags = render_into(
            spec,
            grpc_port=0,
            rest_port=0,
            host_config_dir=rundir / "config",
            server_config_dir=str(rundir / "config"),
            model_path=host_model_path,
        )
        argv = [self.python, "-m", "pytest_tfserving.embedded", *flags]
        process = ManagedProcess(argv, rundir / "server.log", env=server_env(), name="embedded server")
        deadline = time.monotonic() + startup_timeout_s
        try:
            found = process.wait_for_log({"grpc": GRPC_READY, "rest": REST_READY}, startup_timeout_s)
            endpoints = endpoints_for(spec, int(found["grpc"]["port"]), int(found["rest"]["port"]))
            names = [m.name for m in spec.models]
            process.wait_until(
                lambda: models_available(endpoints.rest_url, names),
                max(1.0, deadline - time.monotonic()),
                f"models {names} AVAILABLE at {endpoints.rest_url}",
            )
        except BaseException:
            process.stop()
            raise
        return LocalServer(spec, endpoints, f"embedded (TF {_tf_version()})", process)
