"""Load generation: payloads, gRPC/REST clients, closed and open loops, windows; no pytest imports."""

from __future__ import annotations

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.histogram import Histogram, LatencyStatistics
from pytest_tfserving.load.interleaved import measure_interleaved
from pytest_tfserving.load.payloads import PayloadError, PayloadOptions
from pytest_tfserving.load.runner import measure
from pytest_tfserving.load.server_latency import ServerLatencySnapshot, ServerLatencySource
from pytest_tfserving.load.summary import StabilityRule

__all__ = [
    "Histogram",
    "LatencyStatistics",
    "LoadConfig",
    "PayloadError",
    "PayloadOptions",
    "ServerLatencySnapshot",
    "ServerLatencySource",
    "StabilityRule",
    "measure",
    "measure_interleaved",
]
