"""The one small interface every backend (docker, binary, embedded, external) implements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.process.errors import BackendError, ServerCrashed
from pytest_tfserving.serving.spec import ServerSpec

__all__ = ["Backend", "BackendError", "Endpoints", "RunningServer", "ServerCrashed"]


@dataclass(frozen=True)
class Endpoints:
    grpc_target: str  # "127.0.0.1:PORT"
    rest_url: str  # "http://127.0.0.1:PORT" (no trailing slash)
    prometheus_url: str | None  # full URL of the metrics page, None when monitoring is off


class RunningServer(Protocol):
    spec: ServerSpec
    endpoints: Endpoints
    description: str  # for reports/fingerprints, e.g. "embedded (TF 2.21.0)" or "tensorflow/serving:2.19.1"

    def logs(self) -> str: ...

    def resource_sampler(self) -> ResourceSampler: ...

    def check_alive(self) -> None:
        """Raise ServerCrashed (with the log tail) if the server died."""
        ...

    def stop(self) -> None: ...


class Backend(Protocol):
    name: str

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> RunningServer: ...
