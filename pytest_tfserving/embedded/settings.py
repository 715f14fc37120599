"""Flags + config files -> what the server serves: models, batching, Prometheus path.

The files are read with the shared parsers in ``pytest_tfserving.serving`` (the same grammar the
real server uses); any problem is a ``SettingsError`` naming the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.embedded.flags import Flags
from pytest_tfserving.embedded.manager import ModelEntry
from pytest_tfserving.serving.spec import BatchingSpec, SpecError

DEFAULT_BATCH_POOL = "model_server_batch_threads"
FILE_BATCH_POOL = "batch_threads"


class SettingsError(ValueError):
    """A config file the real server would refuse; the message names the file."""


@dataclass(frozen=True)
class ServingSettings:
    models: list[ModelEntry]
    batching: BatchingSpec | None
    batch_thread_pool_name: str
    prometheus_path: str | None


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def _models(flags: Flags) -> list[ModelEntry]:
    if not flags.model_config_file:
        return [ModelEntry(flags.model_name, Path(flags.model_base_path))]
    from pytest_tfserving.serving.configs import parse_model_config

    text = _read(flags.model_config_file, "--model_config_file")
    try:
        entries = parse_model_config(text)
    except SpecError as exc:
        raise SettingsError(f"{flags.model_config_file}: {exc}") from None
    if not entries:
        raise SettingsError(f"{flags.model_config_file}: model_config_list has no config {{ }} entries")
    for entry in entries:
        if entry.platform != "tensorflow":
            raise SettingsError(
                f"{flags.model_config_file}: model {entry.name!r} has model_platform {entry.platform!r}; "
                'only "tensorflow" (SavedModel, or model.tflite with --prefer_tflite_model) is served'
            )
    return [ModelEntry(e.name, Path(e.base_path), e.version_policy) for e in entries]


def _batching(flags: Flags) -> tuple[BatchingSpec | None, str]:
    if not flags.enable_batching:
        return None, DEFAULT_BATCH_POOL
    if not flags.batching_parameters_file:
        # BasicBatchScheduler defaults when no file is given
        return BatchingSpec(max_batch_size=1000, batch_timeout_micros=0), DEFAULT_BATCH_POOL
    from pytest_tfserving.serving.protos import message_class, parse_batching_parameters

    text = _read(flags.batching_parameters_file, "--batching_parameters_file")
    try:
        spec = parse_batching_parameters(text)
    except SpecError as exc:
        raise SettingsError(f"{flags.batching_parameters_file}: {exc}") from None
    message = message_class("BatchingParameters")()
    from google.protobuf import text_format

    text_format.Parse(text, message)
    pool = message.thread_pool_name.value if message.HasField("thread_pool_name") else FILE_BATCH_POOL
    return spec, pool


def _prometheus(flags: Flags) -> str | None:
    if not flags.monitoring_config_file:
        return None
    from pytest_tfserving.serving.protos import parse_monitoring_config

    text = _read(flags.monitoring_config_file, "--monitoring_config_file")
    try:
        return parse_monitoring_config(text)
    except SpecError as exc:
        raise SettingsError(f"{flags.monitoring_config_file}: {exc}") from None


def load_settings(flags: Flags) -> ServingSettings:
    batching, pool = _batching(flags)
    return ServingSettings(_models(flags), batching, pool, _prometheus(flags))
