"""How each ServerSpec field reaches the server, the baseline fingerprint and the deployment record.

One row per field, so a new field is declared once: ``render`` (flags and config files),
``spec.MANAGED_FLAGS`` (what ``extra_flags`` may not repeat), ``gate.fingerprint.spec_flags``
(the fingerprint's ``server_flags``) and ``gate.deployments`` (the record ``--ab-baseline`` serves
again) all iterate these rows instead of naming fields. tests/unit/serving/test_spec_fields.py
fails for a ServerSpec field whose row is missing or that a consumer drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
MONITORING_CONFIG = "monitoring.config"

RenderKind = Literal["flag", "file", "append"]
"""``flag``: ``--<flags[0]>=<value>`` unless the value is None or the server's default;
``file``: ``config_file`` written from the value (unless None) and ``--<flags[0]>=<its path>``;
``append``: the value is a tuple of ready flags, added last."""

RecordKind = Literal["value", "tuple", "batching", "models"]
"""In a deployment record: ``value`` as is (JSON scalar), ``tuple`` as a list, ``batching`` as the
BatchingSpec's fields, ``models`` as name, variant, version policy and content digest (no path)."""


@dataclass(frozen=True)
class SpecField:
    """One ServerSpec field: the server flags it owns and how each consumer carries it."""

    name: str
    render: RenderKind
    flags: tuple[str, ...] = ()  # server flags the field owns; ``flag``/``file`` render flags[0]
    server_default: object = None  # ``flag``: the value the server assumes when the flag is absent
    config_file: str | None = None  # ``file``: its name in the config directory
    unfingerprinted: str = ""  # why the field stays out of server_flags; empty: it enters them
    record: RecordKind = "value"
    owner: str = ""  # what MANAGED_FLAGS says to set instead; default "set ServerSpec.<name>"

    @property
    def fix(self) -> str:
        return self.owner or f"set ServerSpec.{self.name}"


SPEC_FIELDS: tuple[SpecField, ...] = (  # command-line order
    SpecField(
        "models",
        "file",
        ("model_config_file", "model_name", "model_base_path"),
        config_file=MODELS_CONFIG,
        record="models",
        owner="models come from ServerSpec.models",
        unfingerprinted="the fingerprint's 'models' holds each model's content hash",
    ),
    SpecField("intra_op", "flag", ("tensorflow_intra_op_parallelism",)),
    SpecField("inter_op", "flag", ("tensorflow_inter_op_parallelism",)),
    SpecField("session_parallelism", "flag", ("tensorflow_session_parallelism",)),
    SpecField("rest_api_num_threads", "flag", ("rest_api_num_threads",)),
    SpecField("grpc_max_threads", "flag", ("grpc_max_threads",)),
    SpecField("enable_batching", "flag", ("enable_batching",), server_default=False),
    SpecField(
        "batching", "file", ("batching_parameters_file",), config_file=BATCHING_CONFIG, record="batching"
    ),
    SpecField("prefer_tflite_model", "flag", ("prefer_tflite_model",), server_default=False),
    SpecField("num_tflite_pools", "flag", ("num_tflite_pools",)),
    SpecField("num_tflite_interpreters_per_pool", "flag", ("num_tflite_interpreters_per_pool",)),
    SpecField(
        "prometheus_path",
        "file",
        ("monitoring_config_file",),
        config_file=MONITORING_CONFIG,
        unfingerprinted="where metrics are served is not a performance setting; stored baselines "
        "were fingerprinted without it",
    ),
    SpecField("enable_model_warmup", "flag", ("enable_model_warmup",), server_default=True),
    SpecField("gpu_memory_fraction", "flag", ("per_process_gpu_memory_fraction",)),
    SpecField("extra_flags", "append", record="tuple"),
)

FIELDS: Mapping[str, SpecField] = MappingProxyType({f.name: f for f in SPEC_FIELDS})

LAYOUT_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "port": "the backend picks the port",
        "rest_api_port": "the backend picks the port",
    }
)
"""Flags the backend's ServerLayout sets, not a ServerSpec field."""


def spec_field(name: str) -> SpecField:
    """The row of ServerSpec field ``name``; a field without one is a bug this error names."""
    try:
        return FIELDS[name]
    except KeyError:
        raise KeyError(
            f"ServerSpec.{name} has no row in pytest_tfserving/serving/fields.py SPEC_FIELDS; add one"
        ) from None


def managed_flags() -> dict[str, str]:
    """Server flag -> what to set instead, for every flag the layout or a ServerSpec field owns."""
    owned = dict(LAYOUT_FLAGS)
    for row in SPEC_FIELDS:
        owned.update(dict.fromkeys(row.flags, row.fix))
    return owned


def fingerprinted(value: object) -> bool:
    """Unset, off and empty settings stay out of server_flags (as in every stored fingerprint)."""
    return value not in (None, False, ())
