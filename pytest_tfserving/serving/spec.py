"""One immutable description of a TF Serving deployment: models, threads, batching, TFLite pools.

Backends turn a ServerSpec into a running server; ``serving.render`` and ``serving.configs`` turn it
into the real ``tensorflow_model_server`` flags and config files; ``serving.fields`` says how
each field reaches them, the baseline fingerprint and the deployment record. Validation lives in
``ServerSpec.validate`` (raises ``SpecError`` with a message naming the fix).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_tfserving.serving.fields import managed_flags
from pytest_tfserving.serving.tfs_flags import check_extra_flag

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

    def validate(self, model_name: str = "") -> None:
        where = f"model {model_name!r}: " if model_name else ""
        if self.kind not in ("latest", "all", "specific"):
            raise SpecError(
                f"{where}version_policy kind {self.kind!r} is unknown; use 'latest', 'all' or 'specific'"
            )
        if self.kind == "latest" and self.num_versions < 1:
            raise SpecError(
                f"{where}VersionPolicy('latest', num_versions={self.num_versions}) serves nothing; "
                "set num_versions >= 1"
            )
        if self.kind == "specific":
            if not self.versions:
                raise SpecError(f"{where}VersionPolicy('specific') needs versions, e.g. versions=(1,)")
            if any(v < 0 for v in self.versions):
                raise SpecError(f"{where}model versions must be >= 0, got {self.versions}")


@dataclass(frozen=True)
class ModelSpec:
    """A served model: ``base_path`` is the host directory holding numeric version directories."""

    name: str
    base_path: Path
    variant: Variant = "fp32"
    version_policy: VersionPolicy = VersionPolicy()

    def validate(self) -> None:
        if not self.name or "/" in self.name or self.name.strip() != self.name:
            raise SpecError(
                f"model name {self.name!r} is not usable in a URL path; use a plain name like 'resnet50'"
            )
        if self.variant not in VARIANTS:
            raise SpecError(
                f"model {self.name!r}: unknown variant {self.variant!r}; valid variants: "
                + ", ".join(VARIANTS)
            )
        self.version_policy.validate(self.name)


@dataclass(frozen=True)
class BatchingSpec:
    """Server-side batching; field names as in TF Serving's BatchingParameters."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int | None = None
    max_enqueued_batches: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def validate(self) -> None:
        """Check the rules tensorflow_model_server enforces when it reads the batching file."""
        if self.max_batch_size < 1:
            raise SpecError(f"batching max_batch_size={self.max_batch_size}: set it to 1 or more")
        if self.batch_timeout_micros < 0:
            raise SpecError(f"batching batch_timeout_micros={self.batch_timeout_micros}: set it to 0 or more")
        for name in ("num_batch_threads", "max_enqueued_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SpecError(
                    f"batching {name}={value}: set it to 1 or more, or None for the server default"
                )
        sizes = self.allowed_batch_sizes
        if sizes:
            if sizes[0] < 1 or any(b <= a for a, b in itertools.pairwise(sizes)):
                raise SpecError(
                    f"batching allowed_batch_sizes={sizes} must be positive and strictly increasing, "
                    f"e.g. (8, 16, {self.max_batch_size})"
                )
            if sizes[-1] != self.max_batch_size:
                raise SpecError(
                    f"batching allowed_batch_sizes={sizes} must end at max_batch_size="
                    f"{self.max_batch_size}; append {self.max_batch_size} or change max_batch_size"
                )


@dataclass(frozen=True)
class ServerSpec:
    """Everything that decides how the server behaves. Hashable: equal specs share a server.

    A new field needs its row in ``serving.fields.SPEC_FIELDS`` (flags, fingerprint, record)."""

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
    gpu_memory_fraction: float | None = None
    """--per_process_gpu_memory_fraction: the share of each GPU's memory this server's TensorFlow
    takes at start (0 < f <= 1). None: the server pool sizes it when several GPU servers run at once
    (A and B of --ab-baseline get 0.45 each, ``serving.gpu_share``), else TensorFlow's default, which
    claims most free memory. A value set here always wins."""

    @classmethod
    def single(
        cls,
        name: str,
        base_path: Path | str,
        variant: Variant = "fp32",
        version_policy: VersionPolicy = VersionPolicy(),
        **settings: Any,
    ) -> ServerSpec:
        """One model, other settings as keywords. A TFLite variant turns ``prefer_tflite_model`` on
        unless the caller sets it, because the server only serves ``model.tflite`` with that flag."""
        if variant in TFLITE_VARIANTS:
            settings.setdefault("prefer_tflite_model", True)
        model = ModelSpec(
            name=name, base_path=Path(base_path), variant=variant, version_policy=version_policy
        )
        return cls(models=(model,), **settings)

    def validate(self) -> ServerSpec:
        """Raise SpecError naming the fix for a deployment tensorflow_model_server would reject or
        silently misread; return self so calls chain."""
        _validate_models(self)
        _validate_threads(self)
        _validate_gpu_memory(self)
        _validate_batching(self)
        _validate_monitoring_and_flags(self)
        return self


MANAGED_FLAGS: dict[str, str] = managed_flags()
"""tensorflow_model_server flags that the layout or a ServerSpec field owns (``serving.fields``);
extra_flags may not repeat them."""


def _validate_models(spec: ServerSpec) -> None:
    if not spec.models:
        raise SpecError("ServerSpec has no models; add one, e.g. ServerSpec.single('tiny', '/path/to/tiny')")
    seen: set[str] = set()
    for model in spec.models:
        if not isinstance(model, ModelSpec):
            raise SpecError(f"ServerSpec.models must hold ModelSpec objects, got {model!r}")
        model.validate()
        if model.name in seen:
            raise SpecError(f"model name {model.name!r} appears twice; every served model needs its own name")
        seen.add(model.name)
        if model.variant in TFLITE_VARIANTS and not spec.prefer_tflite_model:
            raise SpecError(
                f"model {model.name!r} is the TFLite variant {model.variant!r}, which "
                "tensorflow_model_server only serves from model.tflite with --prefer_tflite_model=true; "
                "set prefer_tflite_model=True"
            )


def _validate_threads(spec: ServerSpec) -> None:
    for name in ("intra_op", "inter_op", "session_parallelism"):
        value = getattr(spec, name)
        if value is not None and value < 0:
            raise SpecError(
                f"{name}={value}: thread counts cannot be negative; use 0 to let TensorFlow choose"
            )
    for name in (
        "rest_api_num_threads",
        "grpc_max_threads",
        "num_tflite_pools",
        "num_tflite_interpreters_per_pool",
    ):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise SpecError(f"{name}={value}: set it to 1 or more, or None for the server default")
    if spec.session_parallelism and (spec.intra_op or spec.inter_op):
        raise SpecError(
            "set either session_parallelism (one count for both thread pools) or intra_op/inter_op, "
            "not both: "
            "tensorflow_model_server rejects all three together and otherwise ignores "
            "--tensorflow_session_parallelism when intra/inter op parallelism is set"
        )


def _validate_gpu_memory(spec: ServerSpec) -> None:
    fraction = spec.gpu_memory_fraction
    if fraction is None:
        return
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise SpecError(
            f"gpu_memory_fraction={fraction!r}: give the share of GPU memory for this server, "
            "0 < fraction <= 1 (e.g. 0.45 for each of two servers on one GPU), or None for "
            "TensorFlow's default"
        )


def _validate_batching(spec: ServerSpec) -> None:
    if spec.batching is not None:
        if not spec.enable_batching:
            raise SpecError(
                "batching parameters are set but enable_batching is False; the server would ignore "
                "them: set enable_batching=True (or drop batching)"
            )
        spec.batching.validate()


def _validate_monitoring_and_flags(spec: ServerSpec) -> None:
    if spec.prometheus_path is not None and not spec.prometheus_path.startswith("/"):
        raise SpecError(
            f"prometheus_path {spec.prometheus_path!r} must start with '/', e.g. "
            f"{DEFAULT_PROMETHEUS_PATH!r}; use None to turn monitoring off"
        )
    for flag in spec.extra_flags:
        if not isinstance(flag, str):
            raise SpecError(f"extra flag {flag!r} must be a string like '--name=value'")
        try:
            known = check_extra_flag(flag)  # the 2.19.1 flag table: a typo fails here, not silently there
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        if known.name in MANAGED_FLAGS:
            raise SpecError(
                f"extra flag {flag!r} repeats a flag ServerSpec owns: {MANAGED_FLAGS[known.name]}"
            )
