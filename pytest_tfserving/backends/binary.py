"""Backend ``binary``: a ``tensorflow_model_server`` executable on this machine (PATH or a given path).

The real server binds the ports we pass, so we pick free loopback ports and retry when another process
wins the bind race (the log then says "address already in use"): ``launcher.launch_on_free_ports``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.backends.layout import host_model_path, render_into
from pytest_tfserving.backends.local import LocalServer, endpoints_for
from pytest_tfserving.process.launcher import STARTUP_HINT, Launch, launch_on_free_ports
from pytest_tfserving.process.wait import ModelsAvailableWait
from pytest_tfserving.serving.spec import ServerSpec

DEFAULT_BINARY = "tensorflow_model_server"


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
        names = [m.name for m in spec.models]

        def plan(ports: tuple[int, ...]) -> Launch:
            grpc_port, rest_port = ports
            rundir = Path(tempfile.mkdtemp(prefix="binary-", dir=workdir))
            flags = render_into(
                spec,
                grpc_port=grpc_port,
                rest_port=rest_port,
                host_config_dir=rundir / "config",
                server_config_dir=str(rundir / "config"),
                model_path=host_model_path,
            )
            rest_url = endpoints_for(spec, grpc_port, rest_port).rest_url
            ready = ModelsAvailableWait(rest_url, names)
            return Launch([self.binary, *flags], rundir / "server.log", ready, name=DEFAULT_BINARY)

        process, (grpc_port, rest_port) = launch_on_free_ports(plan, 2, startup_timeout_s, hint=STARTUP_HINT)
        endpoints = endpoints_for(spec, grpc_port, rest_port)
        return LocalServer(spec, endpoints, f"tensorflow_model_server ({self.version})", process)
