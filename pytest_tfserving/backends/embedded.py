"""Backend ``embedded``: our TF-Serving-compatible server (``python -m pytest_tfserving.embedded``).

Needs no Docker and no tensorflow_model_server: it runs wherever the tests run. It binds port 0 on
127.0.0.1 (the embedded server listens on loopback unless ``--bind_address`` says otherwise) and we
read the real ports from its readiness lines (the same lines tensorflow_model_server prints).
"""

from __future__ import annotations

import sys
import tempfile
from importlib import metadata
from pathlib import Path

from pytest_tfserving.backends.layout import host_model_path, render_into
from pytest_tfserving.backends.local import LocalServer, endpoints_for
from pytest_tfserving.embedded.launch import EMBEDDED_MODULE, AnnouncedPorts, server_env
from pytest_tfserving.process.launcher import STARTUP_HINT, Launch, launch
from pytest_tfserving.process.wait import AllOf, ModelsAvailableWait
from pytest_tfserving.serving.spec import ServerSpec


def _tf_version() -> str:
    try:
        return metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        return "unknown"


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
        argv = [self.python, "-m", EMBEDDED_MODULE, *flags]
        ports = AnnouncedPorts()

        def rest_url() -> str:  # asked only once the ports were announced (AllOf keeps the order)
            return endpoints_for(spec, ports.grpc_port, ports.rest_port).rest_url

        ready = AllOf(ports, ModelsAvailableWait(rest_url, [m.name for m in spec.models]))
        command = Launch(argv, rundir / "server.log", ready, env=server_env(), name="embedded server")
        process = launch(command, startup_timeout_s, hint=STARTUP_HINT, poll_s=0.05)
        endpoints = endpoints_for(spec, ports.grpc_port, ports.rest_port)
        return LocalServer(spec, endpoints, f"embedded (TF {_tf_version()})", process)
