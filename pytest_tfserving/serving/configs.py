"""The ``--model_config_file`` (a text ModelServerConfig): written and read with the real proto.

Using upstream's ModelServerConfig descriptor (``serving.config_protos``, no TensorFlow needed) and
``text_format`` means a file we write is one tensorflow_model_server accepts, and a file we read (the
embedded server does) is rejected for the same reasons the real server would reject it, with a message
that says what to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format

from pytest_tfserving.serving.config_protos import config_message
from pytest_tfserving.serving.spec import ModelSpec, SpecError, VersionPolicy

PLATFORM = "tensorflow"
"""TF Serving serves SavedModels and model.tflite (with --prefer_tflite_model) under this platform."""

# Words from TensorFlow's session ConfigProto that people (the study included) put into ModelConfig.
_SESSION_OPTION_WORDS = (
    "platform_config",
    "inter_op_parallelism_threads",
    "intra_op_parallelism_threads",
    "session_config",
    "gpu_options",
    "allow_growth",
    "per_process_gpu_memory_fraction",
)
_THREADS_HELP = (
    "ModelConfig in model_config_list has no platform_config or thread/GPU settings. Thread counts are "
    "server flags: --tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism "
    "(ServerSpec.intra_op / ServerSpec.inter_op); GPU options go in a --platform_config_file, not here"
)


@dataclass(frozen=True)
class ModelConfigEntry:
    """One ``config { ... }`` of a model_config_list, as the server sees it."""

    name: str
    base_path: str
    platform: str
    version_policy: VersionPolicy


def _policy_to_proto(policy: VersionPolicy, config: Any) -> None:
    target = config.model_version_policy
    if policy.kind == "latest":
        target.latest.num_versions = policy.num_versions
    elif policy.kind == "all":
        target.all.SetInParent()
    else:
        target.specific.versions.extend(policy.versions)


def _policy_from_proto(config: Any) -> VersionPolicy:
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "specific":
        return VersionPolicy(kind="specific", versions=tuple(int(v) for v in policy.specific.versions))
    if which == "latest":
        # Upstream treats num_versions 0 as 1.
        return VersionPolicy(kind="latest", num_versions=max(1, int(policy.latest.num_versions)))
    return VersionPolicy()  # the server's default: latest, one version


def model_config_text(models: Sequence[ModelSpec], base_path_of: Callable[[ModelSpec], str]) -> str:
    """The model config file serving ``models``; ``base_path_of`` maps a model to the path the server
    sees (a container path for docker, the host path for a local binary)."""
    if not models:
        raise SpecError("no models to serve; add at least one ModelSpec")
    config = config_message("ModelServerConfig")
    seen: set[str] = set()
    for model in models:
        model.validate()
        if model.name in seen:
            raise SpecError(f"model name {model.name!r} appears twice; every served model needs its own name")
        seen.add(model.name)
        entry = config.model_config_list.config.add()
        entry.name = model.name
        entry.base_path = str(base_path_of(model))
        entry.model_platform = PLATFORM
        _policy_to_proto(model.version_policy, entry)
    return str(text_format.MessageToString(config))


def _explain_parse_error(exc: text_format.ParseError) -> SpecError:
    text = str(exc)
    unknown = re.search(r'has no field named "(\w+)"', text)
    if any(word in text for word in _SESSION_OPTION_WORDS):
        return SpecError(f"model config file: {text}. {_THREADS_HELP}")
    if unknown:
        return SpecError(
            f"model config file: {text}. {unknown.group(1)!r} is no field there; a ModelConfig has name, "
            "base_path, model_platform, model_version_policy, version_labels and logging_config"
        )
    return SpecError(f"model config file is not a valid text ModelServerConfig proto: {text}")


def parse_model_config(text: str) -> list[ModelConfigEntry]:
    """Read a ``--model_config_file`` and refuse what tensorflow_model_server would refuse."""
    config = config_message("ModelServerConfig")
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise _explain_parse_error(exc) from exc
    if config.HasField("custom_model_config"):
        raise SpecError("model config file uses custom_model_config; only model_config_list is supported")
    entries: list[ModelConfigEntry] = []
    seen: set[str] = set()
    for item in config.model_config_list.config:
        where = f"model config file, model {item.name!r}"
        if not item.name:
            raise SpecError('model config file: a config { } has no name; add name: "my_model"')
        if item.name in seen:
            raise SpecError(f"{where}: the name appears twice; every model needs its own name")
        seen.add(item.name)
        if not item.base_path:
            raise SpecError(f"{where}: base_path is empty; point it at the directory of version dirs")
        if not item.model_platform:
            raise SpecError(f'{where}: model_platform is not set; add model_platform: "{PLATFORM}"')
        policy = _policy_from_proto(item)
        if policy.kind == "specific" and not policy.versions:
            raise SpecError(f"{where}: model_version_policy specific {{ }} lists no versions")
        entries.append(
            ModelConfigEntry(
                name=item.name, base_path=item.base_path, platform=item.model_platform, version_policy=policy
            )
        )
    return entries
