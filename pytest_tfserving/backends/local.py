"""RunningServer for a server process on this machine (embedded and binary backends share it)."""

from __future__ import annotations

from pytest_tfserving.backends.base import Endpoints
from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.process.launcher import ManagedProcess
from pytest_tfserving.serving.spec import ServerSpec


def endpoints_for(spec: ServerSpec, grpc_port: int, rest_port: int) -> Endpoints:
    rest_url = f"http://127.0.0.1:{rest_port}"
    prometheus = f"{rest_url}{spec.prometheus_path}" if spec.prometheus_path else None
    return Endpoints(grpc_target=f"127.0.0.1:{grpc_port}", rest_url=rest_url, prometheus_url=prometheus)


class LocalServer:
    """A started server process: its log file, a psutil sampler of its process tree, group stop."""

    def __init__(
        self, spec: ServerSpec, endpoints: Endpoints, description: str, process: ManagedProcess
    ) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.description = description
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.process.logs()

    def resource_sampler(self) -> ResourceSampler:
        from pytest_tfserving.metrics.process import ProcessSampler

        return ProcessSampler(self.process.pid)

    def check_alive(self) -> None:
        self.process.check_alive()

    def stop(self) -> None:
        self.process.stop()

    def __repr__(self) -> str:
        return f"LocalServer({self.description!r}, {self.endpoints.grpc_target}, pid={self.pid})"
