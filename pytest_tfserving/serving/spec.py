"""One immutable description of a TF Serving deployment: models, threads, batching, TFLite pools.

Backends turn a ServerSpec into a running server; ``serving.flags`` and ``serving.configs`` turn it
into the real ``tensorflow_model_server`` flags and config files. Validation lives in
``ServerSpec.validate`` (raises ``SpecError`` with a message naming the fix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Variant = Literal["fp32", "fp16", "int8-dynamic", "int8"]
VARIANTS: tuple[str, ...] = ("fp32", "fp16", "int8-dynamic", "int8")
TFLITE_VARIANTS: frozenset[str] = frozenset({"fp16", "int8-dynamic", "int8"})
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class SpecError(ValueError):
    """An invalid server description; the message says how to fix it."""


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's model_version_policy: ``latest`` (num_versions), ``all``, or ``specific``."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A served model: ``base_path`` is the host directory holding numeric version directories."""

    name: str
    base_path: Path
    variant: Variant = "fp32"
    version_policy: VersionPolicy = VersionPolicy()


@dataclass(frozen=True)
class BatchingSpec:
    """Server-side batching; field names as in TF Serving's BatchingParameters."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int | None = None
    max_enqueued_batches: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False


@dataclass(frozen=True)
class ServerSpec:
    """Everything that decides how the server behaves. Hashable: equal specs share a server."""

    models: tuple[ModelSpec, ...]
    intra_op: int | None = None
    inter_op: int | None = None
    session_parallelism: int | None = None
    rest_api_num_threads: int | None = None
    grpc_max_threads: int | None = None
    enable_batching: bool = False
    batching: BatchingSpec | None = None
    prefer_tflite_model: bool = False
    num_tflite_pools: int | None = None
    num_tflite_interpreters_per_pool: int | None = None
    enable_model_warmup: bool = True
    prometheus_path: str | None = DEFAULT_PROMETHEUS_PATH
    extra_flags: tuple[str, ...] = field(default=())
