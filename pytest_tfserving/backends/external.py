"""Backend ``external``: a server someone else runs (staging, a sidecar); we only check readiness.

We neither start nor stop it, and we cannot see its process: its resource sampler is an
``UnavailableSampler`` whose samples carry NaN for CPU and memory (``available`` is False), so reports
show "n/a" instead of a made-up number.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from pytest_tfserving.backends.base import BackendError, Endpoints, ServerCrashed
from pytest_tfserving.metrics.resources import ResourceSample, ResourceSampler
from pytest_tfserving.process.readiness import models_available
from pytest_tfserving.process.wait import ModelsAvailableWait, wait_until_ready
from pytest_tfserving.serving.spec import ServerSpec


class UnavailableSampler:
    """A ResourceSampler for servers we cannot observe: every value is NaN ("not measured")."""

    available = False

    def sample(self) -> ResourceSample:
        return ResourceSample(timestamp=time.monotonic(), cpu_percent=math.nan, rss_mb=math.nan)

    def close(self) -> None:
        """Nothing to release."""


def _grpc_ready(target: str, timeout_s: float) -> bool:
    import grpc

    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def normalize_rest_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = f"http://{url}"
    return url


class ExternalServer:
    """An already running server: ``stop`` does nothing (it is not ours)."""

    def __init__(self, spec: ServerSpec, endpoints: Endpoints, description: str) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.description = description

    def logs(self) -> str:
        return f"(external server at {self.endpoints.rest_url}: its log is not available to pytest)"

    def resource_sampler(self) -> ResourceSampler:
        return UnavailableSampler()

    def check_alive(self) -> None:
        names = [m.name for m in self.spec.models]
        if not models_available(self.endpoints.rest_url, names, timeout_s=5.0):
            raise ServerCrashed(
                f"external server at {self.endpoints.rest_url} no longer reports models {names} AVAILABLE"
            )

    def stop(self) -> None:
        """Not ours to stop."""


class ExternalBackend:
    """Connects to ``grpc_target`` ("host:port") and ``rest_url``; the spec's models must be served there."""

    name = "external"

    def __init__(self, grpc_target: str, rest_url: str, description: str | None = None) -> None:
        if not grpc_target or not rest_url:
            raise BackendError(
                "--tfserving-backend=external needs both the gRPC target and the REST URL of the running "
                "server (e.g. --tfserving-target=127.0.0.1:8500 "
                "--tfserving-rest-url=http://127.0.0.1:8501)"
            )
        self.grpc_target = grpc_target.strip()
        self.rest_url = normalize_rest_url(rest_url)
        self.description = description or f"external ({self.rest_url})"

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> ExternalServer:
        """Wait (up to the timeout) until the models are AVAILABLE and gRPC accepts connections."""
        names = [m.name for m in spec.models]
        deadline = time.monotonic() + startup_timeout_s
        wait_until_ready(
            ModelsAvailableWait(self.rest_url, names),
            startup_timeout_s,
            subject=f"external server at {self.rest_url}",
            hint="check the URL and that it serves these model names",
            poll_s=0.25,
        )
        if not _grpc_ready(self.grpc_target, max(1.0, deadline - time.monotonic())):
            raise BackendError(
                f"external server's gRPC target {self.grpc_target} does not accept connections"
            )
        prometheus = f"{self.rest_url}{spec.prometheus_path}" if spec.prometheus_path else None
        endpoints = Endpoints(grpc_target=self.grpc_target, rest_url=self.rest_url, prometheus_url=prometheus)
        return ExternalServer(spec, endpoints, self.description)
