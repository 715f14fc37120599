"""``LoadConfig``: everything about one side of a measurement, and the pieces a run is built from.

The runners (``runner``, ``interleaved``, ``alternating``, ``single_request``) and outside drivers
(``perf_suites/cached_load.py``) take one, so the server, protocol, loop and payloads are chosen once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_tfserving.load.clients import Client, open_client
from pytest_tfserving.load.loops import LoopPlan
from pytest_tfserving.load.payloads import (
    PayloadOptions,
    RequestPool,
    build_example_pool,
    build_pool,
    fetch_signature,
)
from pytest_tfserving.load.server_latency import ServerLatencySource
from pytest_tfserving.load.summary import StabilityRule, Summarizer
from pytest_tfserving.load.wire import LOAD_METHODS, TensorSpec
from pytest_tfserving.metrics.resources import ResourceSampler


@dataclass(frozen=True)
class LoadConfig:
    """Which server to load and how: everything about one side of a measurement.

    ``target`` is "127.0.0.1:PORT" for gRPC or "http://127.0.0.1:PORT" for REST. Closed loop keeps
    ``concurrency`` requests in flight; open loop starts ``rate`` requests/s (``arrival`` "constant" or
    "poisson"). ``connections``: REST keep-alive connections (default: concurrency, or 64 in open loop).
    ``channels``: gRPC channels (TCP connections) per process. ``signature`` skips the metadata call.
    ``method``: "predict" (tensors, generated from the signature or ``payloads.inputs``), or "classify"
    / "regress" (gRPC Classify/Regress, REST ``:classify``/``:regress``) sending ``payloads.examples``,
    serialized tf.Example.
    """

    target: str
    model_name: str
    protocol: str = "grpc"
    signature_name: str = "serving_default"
    mode: str = "closed"
    concurrency: int = 1
    rate: float | None = None
    arrival: str = "constant"
    payloads: PayloadOptions = field(default_factory=PayloadOptions)
    timeout_s: float = 10.0
    connections: int | None = None
    channels: int = 1
    max_in_flight: int = 1_000
    signature: Mapping[str, TensorSpec] | None = None
    sampler: ResourceSampler | None = None
    server_latency: ServerLatencySource | None = None
    method: str = "predict"

    def __post_init__(self) -> None:
        if self.method not in LOAD_METHODS:
            raise ValueError(f"method must be one of {', '.join(LOAD_METHODS)}, got {self.method!r}")
        if self.method != "predict" and self.payloads.examples is None:
            raise ValueError(
                f"method={self.method!r} sends serialized tf.Example: pass payloads=PayloadOptions("
                "examples=[[example.SerializeToString()], ...]), one list of examples per request"
            )
        if self.method == "predict" and self.payloads.examples is not None:
            raise ValueError(
                "payloads.examples (serialized tf.Example) are sent by method='classify' or 'regress'; "
                "set method, or give predict tensors as payloads.inputs"
            )
        if self.protocol not in ("grpc", "rest"):
            raise ValueError(f"protocol must be 'grpc' or 'rest', got {self.protocol!r}")
        if self.mode not in ("closed", "open"):
            raise ValueError(f"mode must be 'closed' or 'open', got {self.mode!r}")
        if self.mode == "open" and (self.rate is None or self.rate <= 0):
            raise ValueError("open loop needs rate=<requests per second> > 0")
        if self.mode == "closed" and self.concurrency < 1:
            raise ValueError(f"closed loop needs concurrency >= 1, got {self.concurrency}")
        if self.protocol == "rest" and not self.target.startswith(("http://", "https://")):
            raise ValueError(f"REST target must be a URL like http://127.0.0.1:8501, got {self.target!r}")
        if self.protocol == "grpc" and "://" in self.target:
            raise ValueError(f"gRPC target must be host:port like 127.0.0.1:8500, got {self.target!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    @property
    def rest_connections(self) -> int:
        if self.connections is not None:
            return self.connections
        return self.concurrency if self.mode == "closed" else 64

    def pool(self) -> RequestPool:
        if self.method != "predict":
            return build_example_pool(
                self.method, self.protocol, self.model_name, self.signature_name, self.payloads
            )
        signature = self.signature or fetch_signature(
            self.target, self.protocol, self.model_name, self.signature_name, self.timeout_s
        )
        return build_pool(signature, self.protocol, self.model_name, self.signature_name, self.payloads)

    def open_client(self, pool: RequestPool) -> Client:
        return open_client(
            self.protocol,
            self.target,
            self.model_name,
            pool,
            timeout_s=self.timeout_s,
            connections=self.rest_connections,
            channels=self.channels,
        )

    def plan(
        self, *, warmup_s: float, window_s: float, max_windows: int, max_requests: int | None, seed: int
    ) -> LoopPlan:
        return LoopPlan(
            mode=self.mode,
            concurrency=self.concurrency,
            rate=self.rate or 0.0,
            arrival=self.arrival,
            warmup_s=warmup_s,
            window_s=window_s,
            max_windows=max_windows,
            max_requests=max_requests,
            max_in_flight=self.max_in_flight,
            seed=seed,
        )

    def summarizer(self, rule: StabilityRule, extra: dict[str, float] | None = None) -> Summarizer:
        return Summarizer(
            protocol=self.protocol,
            mode=self.mode,
            concurrency=self.concurrency if self.mode == "closed" else None,
            target_rps=self.rate if self.mode == "open" else None,
            rule=rule,
            sampler=self.sampler,
            server_latency=self.server_latency,
            extra=extra,
        )
