"""Backend ``binary``: a ``tensorflow_model_server`` executable on this machine (PATH or a given path).

The real server binds the ports we pass, so we pick free loopback ports and retry when another process
wins the bind race (the log then says "address already in use").
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.backends.layout import host_model_path, render_into
from pytest_tfserving.backends.local import LocalServer, endpoints_for
from pytest_tfserving.backends.process import ManagedProcess
from pytest_tfserving.process.ports import address_in_use, free_loopback_port
from pytest_tfserving.process.readiness import models_available
from pytest_tfserving.serving.spec import ServerSpec

DEFAULT_BINARY = "tensorflow_model_server"
BIND_ATTEMPTS = 3


def find_binary(binary: str | None = None) -> str | None:
    """Absolute path of the server binary, or None when it is not installed."""
    candidate = binary or DEFAULT_BINARY
    if os.sep in candidate:
        return candidate if os.access(candidate, os.X_OK) and Path(candidate).is_file() else None
    return shutil.which(candidate)


def binary_version(path: str) -> str:
    """The first line of ``--version`` ("TensorFlow ModelServer: 2.19.1-..."), or "unknown version"."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown version"
    first = out.strip().splitlines()[0] if out.strip() else ""
    return first or "unknown version"


class BinaryBackend:
    """Runs ``tensorflow_model_server`` as a child process in its own process group."""

    name = "binary"

    def __init__(self, binary: str | None = None) -> None:
        path = find_binary(binary)
        if path is None:
            wanted = binary or DEFAULT_BINARY
            raise BackendError(
                f"{wanted!r} not found or not executable. Install TF Serving "
                "(https://www.tensorflow.org/tfx/serving/setup, e.g. "
                "apt-get install tensorflow-model-server), pass its path with --tfserving-binary=PATH, "
                "or use --tfserving-backend=embedded|docker|external"
            )
        self.binary = path
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = binary_version(self.binary)
        return self._version

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> LocalServer:
        deadline = time.monotonic() + startup_timeout_s
        names = [m.name for m in spec.models]
        for attempt in range(1, BIND_ATTEMPTS + 1):
            grpc_port, rest_port = free_loopback_port(), free_loopback_port()
            while rest_port == grpc_port:
                rest_port = free_loopback_port()
            rundir = Path(tempfile.mkdtemp(prefix="binary-", dir=workdir))
            flags = render_into(
                spec,
                grpc_port=grpc_port,
                rest_port=rest_port,
                host_config_dir=rundir / "config",
                server_config_dir=str(rundir / "config"),
                model_path=host_model_path,
            )
            process = ManagedProcess([self.binary, *flags], rundir / "server.log", name=DEFAULT_BINARY)
            endpoints = endpoints_for(spec, grpc_port, rest_port)
            try:
                process.wait_until(
                    functools.partial(models_available, endpoints.rest_url, names),
                    max(1.0, deadline - time.monotonic()),
                    f"models {names} AVAILABLE at {endpoints.rest_url}",
                )
            except BackendError:
                process.stop()
                if attempt < BIND_ATTEMPTS and address_in_use(process.logs()):
                    continue  # lost the bind race: new ports
                raise
            except BaseException:
                process.stop()
                raise
            return LocalServer(spec, endpoints, f"tensorflow_model_server ({self.version})", process)
        raise AssertionError("unreachable")
