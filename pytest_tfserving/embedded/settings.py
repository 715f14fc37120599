"""Flags + config files -> what the server serves: models, batching, Prometheus path, session options.

The model config is read as the real server reads it (``embedded.model_config``: its checks and
texts); batching and monitoring files with the shared parsers in ``pytest_tfserving.serving`` (the
same grammar the real server uses). Any problem is a ``SettingsError``, printed as the binary prints
"Failed to start server. Error: ...".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tfserving.embedded.flags import Flags
from pytest_tfserving.embedded.manager import ModelEntry
from pytest_tfserving.serving.spec import BatchingSpec, SpecError

if TYPE_CHECKING:
    from tensorflow.core.protobuf.config_pb2 import ConfigProto
    from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

DEFAULT_BATCH_POOL = "model_server_batch_threads"
FILE_BATCH_POOL = "batch_threads"


class SettingsError(ValueError):
    """A config file the real server would refuse; the message names the file."""


@dataclass(frozen=True)
class ServingSettings:
    model_config: ModelServerConfig
    models: list[ModelEntry]
    batching: BatchingSpec | None
    batch_thread_pool_name: str
    prometheus_path: str | None
    session_config: ConfigProto | None = None


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def _models(flags: Flags) -> tuple[ModelServerConfig, list[ModelEntry]]:
    """The initial ModelServerConfig (file or single model) and its entries, refused as upstream
    refuses them: "Failed to start server. Error: CODE: text"."""
    from pytest_tfserving.embedded.errors import ServingError
    from pytest_tfserving.embedded.model_config import model_entries, read_config_file, single_model_config

    try:
        if flags.model_config_file:
            config = read_config_file(flags.model_config_file)
        else:
            config = single_model_config(flags.model_name, flags.model_base_path)
        entries, _ = model_entries(config)
    except ServingError as error:
        raise SettingsError(f"{error.status_name}: {error.message}") from None
    return config, entries


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


def _session_config(flags: Flags) -> ConfigProto:
    """The session options upstream builds: --tensorflow_session_config_file, then the GPU memory
    fraction and the thread counts from their flags (which always win over the file)."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf.config_pb2 import ConfigProto

    config = ConfigProto()
    if flags.tensorflow_session_config_file:
        text = _read(flags.tensorflow_session_config_file, "--tensorflow_session_config_file")
        try:
            text_format.Parse(text, config)
        except text_format.ParseError as exc:
            raise SettingsError(
                f"INVALID_ARGUMENT: Invalid protobuf file: '{flags.tensorflow_session_config_file}' ({exc})"
            ) from None
    config.gpu_options.per_process_gpu_memory_fraction = flags.per_process_gpu_memory_fraction
    config.intra_op_parallelism_threads, config.inter_op_parallelism_threads = flags.threads
    return config


def load_settings(flags: Flags) -> ServingSettings:
    config, entries = _models(flags)
    batching, pool = _batching(flags)
    return ServingSettings(config, entries, batching, pool, _prometheus(flags), _session_config(flags))
