"""ServerSpec -> the exact ``tensorflow_model_server`` command-line flags and config files.

Every backend (docker, binary, embedded) starts the server from this one rendering, so what we
measure is what the flags say. Only settings the spec sets are emitted: the server's own defaults
stay the server's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pytest_tfserving.serving.configs import model_config_text
from pytest_tfserving.serving.protos import batching_parameters_text, monitoring_config_text
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
MONITORING_CONFIG = "monitoring.config"


@dataclass(frozen=True)
class ServerLayout:
    """Where the server sees things: ports, the config directory and each model's base path."""

    grpc_port: int  # 0 allowed (the embedded server then picks a port)
    rest_port: int
    config_dir: str  # directory where the SERVER sees the generated files (e.g. "/config" in docker)
    model_path: Callable[[ModelSpec], str]  # base path of a model as the server sees it


@dataclass(frozen=True)
class RenderedServer:
    """Flags for the command line and the files to write into ``config_dir`` before starting."""

    flags: tuple[str, ...]
    files: Mapping[str, str] = field(default_factory=dict)


def _flag(name: str, value: object) -> str:
    if isinstance(value, bool):
        return f"--{name}={'true' if value else 'false'}"
    return f"--{name}={value}"


def render_server(spec: ServerSpec, layout: ServerLayout) -> RenderedServer:
    """Validate ``spec`` and render it; raises SpecError naming the fix for an invalid spec."""
    spec.validate()
    if layout.grpc_port < 0 or layout.rest_port < 0:
        raise ValueError(f"ports must be >= 0, got grpc {layout.grpc_port}, rest {layout.rest_port}")

    def in_config_dir(name: str) -> str:
        return posixpath.join(layout.config_dir, name)

    files: dict[str, str] = {MODELS_CONFIG: model_config_text(spec.models, layout.model_path)}
    flags = [
        _flag("port", layout.grpc_port),
        _flag("rest_api_port", layout.rest_port),
        _flag("model_config_file", in_config_dir(MODELS_CONFIG)),
    ]
    optional: tuple[tuple[str, int | None], ...] = (
        ("tensorflow_intra_op_parallelism", spec.intra_op),
        ("tensorflow_inter_op_parallelism", spec.inter_op),
        ("tensorflow_session_parallelism", spec.session_parallelism),
        ("rest_api_num_threads", spec.rest_api_num_threads),
        ("grpc_max_threads", spec.grpc_max_threads),
    )
    flags += [_flag(name, value) for name, value in optional if value is not None]
    if spec.enable_batching:
        flags.append(_flag("enable_batching", True))
        if spec.batching is not None:
            files[BATCHING_CONFIG] = batching_parameters_text(spec.batching)
            flags.append(_flag("batching_parameters_file", in_config_dir(BATCHING_CONFIG)))
    if spec.prefer_tflite_model:
        flags.append(_flag("prefer_tflite_model", True))
    if spec.num_tflite_pools is not None:
        flags.append(_flag("num_tflite_pools", spec.num_tflite_pools))
    if spec.num_tflite_interpreters_per_pool is not None:
        flags.append(_flag("num_tflite_interpreters_per_pool", spec.num_tflite_interpreters_per_pool))
    if spec.prometheus_path is not None:
        files[MONITORING_CONFIG] = monitoring_config_text(spec.prometheus_path)
        flags.append(_flag("monitoring_config_file", in_config_dir(MONITORING_CONFIG)))
    if not spec.enable_model_warmup:  # the server's default is true
        flags.append(_flag("enable_model_warmup", False))
    flags += spec.extra_flags
    return RenderedServer(flags=tuple(flags), files=MappingProxyType(files))
