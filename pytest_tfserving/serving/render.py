"""ServerSpec -> the exact ``tensorflow_model_server`` command-line flags and config files.

Every backend (docker, binary, embedded) starts the server from this one rendering, so what we
measure is what the flags say. Only settings the spec sets are emitted: the server's own defaults
stay the server's. Which flag or file each field becomes is declared in ``serving.fields``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_tfserving.serving.configs import model_config_text
from pytest_tfserving.serving.fields import (
    BATCHING_CONFIG,
    MODELS_CONFIG,
    MONITORING_CONFIG,
    SPEC_FIELDS,
)
from pytest_tfserving.serving.protos import batching_parameters_text, monitoring_config_text
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec


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


_CONFIG_TEXT: dict[str, Callable[[Any, ServerLayout], str]] = {
    MODELS_CONFIG: lambda models, layout: model_config_text(models, layout.model_path),
    BATCHING_CONFIG: lambda batching, _: batching_parameters_text(batching),
    MONITORING_CONFIG: lambda path, _: monitoring_config_text(path),
}
"""Config file name -> its text from the field's value."""


def render_server(spec: ServerSpec, layout: ServerLayout) -> RenderedServer:
    """Validate ``spec`` and render it; raises SpecError naming the fix for an invalid spec."""
    spec.validate()
    if layout.grpc_port < 0 or layout.rest_port < 0:
        raise ValueError(f"ports must be >= 0, got grpc {layout.grpc_port}, rest {layout.rest_port}")

    def in_config_dir(name: str) -> str:
        return posixpath.join(layout.config_dir, name)

    files: dict[str, str] = {}
    flags = [_flag("port", layout.grpc_port), _flag("rest_api_port", layout.rest_port)]
    for row in SPEC_FIELDS:
        value = getattr(spec, row.name)
        if row.render == "append":
            flags += value
        elif value is None:
            continue
        elif row.render == "file":  # batching only comes with enable_batching: validate() saw to it
            assert row.config_file is not None, row
            files[row.config_file] = _CONFIG_TEXT[row.config_file](value, layout)
            flags.append(_flag(row.flags[0], in_config_dir(row.config_file)))
        elif value != row.server_default:
            flags.append(_flag(row.flags[0], value))
    return RenderedServer(flags=tuple(flags), files=MappingProxyType(files))
