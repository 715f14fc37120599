"""Which models to serve: --model_config_file, its polling, and ModelService.HandleReloadConfigRequest.

A ModelServerConfig becomes ModelEntry rows with TF Serving 2.19.1's checks and texts (server_core.cc:
unique names, absolute base paths, a known platform that a reload may not change). A reload swaps
the model list, then waits, as ServerCore::ReloadConfig does, until every *new* model has a version
available (UNKNOWN "N model(s) did not become available" when one fails to load).
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.manager import ModelEntry, ModelManager
from pytest_tfserving.serving.spec import VersionPolicy

log = logging.getLogger("pytest_tfserving.embedded")

SUPPORTED_PLATFORMS = frozenset({"tensorflow"})
_CONFIG_TYPE = "tensorflow.serving.ModelServerConfig"


def read_config_file(path: str) -> model_server_config_pb2.ModelServerConfig:
    """ParseProtoTextFile: NOT_FOUND for a missing file; a parse error is logged as protobuf's C++
    parser logs it and answered INVALID_ARGUMENT "Invalid protobuf file: 'PATH'"."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"{path}; No such file or directory") from None
    except OSError as exc:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f"{path}; {exc.strerror}") from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        detail = str(exc).split(" : ", 1)[-1]
        where = f"{exc.GetLine()}:{exc.GetColumn()}" if exc.GetLine() is not None else "0:0"
        print(
            f"[libprotobuf ERROR text_format.cc] Error parsing text-format {_CONFIG_TYPE}: {where}: {detail}",
            file=sys.stderr,
            flush=True,
        )
        raise invalid(f"Invalid protobuf file: '{path}'") from None
    return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """BuildSingleModelConfig: what --model_name/--model_base_path stand for."""
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name = name
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    return config


def _platform(config: model_server_config_pb2.ModelConfig) -> str:
    """GetPlatform: model_platform, or the deprecated model_type TENSORFLOW."""
    if config.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if config.model_platform:
            raise invalid(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {config.name}"
            )
        if config.model_type == model_server_config_pb2.TENSORFLOW:
            return "tensorflow"
        raise invalid(f"ModelServerConfig::model_type choice {config.model_type} not supported.")
    if not config.model_platform:
        raise invalid(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {config.name}"
        )
    return str(config.model_platform)


def _policy(config: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        return VersionPolicy("specific", versions=tuple(int(v) for v in policy.specific.versions))
    if which == "latest":
        return VersionPolicy("latest", num_versions=max(1, int(policy.latest.num_versions)))
    return VersionPolicy()


def _is_relative(path: str) -> bool:
    """UriIsRelativePath: no scheme, no host, not absolute."""
    return "://" not in path and not path.startswith("/")


def model_entries(
    config: model_server_config_pb2.ModelServerConfig, previous: dict[str, str] | None = None
) -> tuple[list[ModelEntry], dict[str, str]]:
    """ValidateModelConfigList (+ platforms, and ValidateNoModelsChangePlatforms against ``previous``):
    the entries to serve and each model's platform."""
    configs = list(config.model_config_list.config)
    names: set[str] = set()
    for item in configs:
        if item.name in names:
            raise invalid(f"Illegal to list model {item.name} multiple times in config list")
        names.add(item.name)
    for item in configs:
        if _is_relative(item.base_path):
            raise invalid(
                f"Expected model {item.name} to have an absolute path or URI; "
                f"got base_path()={item.base_path}"
            )
    platforms = {item.name: _platform(item) for item in configs}
    for name, platform in platforms.items():
        if previous is not None and name in previous and previous[name] != platform:
            raise invalid(
                f"Illegal to change a model's platform. For model {name} platform was {previous[name]} and "
                f"new platform requested is {platform}"
            )
    for item in configs:
        if platforms[item.name] not in SUPPORTED_PLATFORMS:
            raise invalid(f"Model {item.name} requests unsupported platform {platforms[item.name]}")
    entries = [ModelEntry(item.name, Path(item.base_path), _policy(item)) for item in configs]
    return entries, platforms


class ConfigReloader:
    """ServerCore::ReloadConfig over a ModelManager; one reload at a time."""

    def __init__(
        self,
        manager: ModelManager,
        config: model_server_config_pb2.ModelServerConfig,
        stop: threading.Event,
        wait_poll_s: float = 0.2,
    ) -> None:
        self._manager = manager
        self._config = config
        _, self._platforms = model_entries(config)
        self._stop = stop
        self._wait_poll_s = wait_poll_s
        self._lock = threading.Lock()

    def reload(self, new: model_server_config_pb2.ModelServerConfig) -> None:
        """Serve ``new``; raises ServingError with upstream's code and text when it is refused."""
        with self._lock:
            kind = new.WhichOneof("config")
            if kind not in (None, "model_config_list"):
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "Cannot transition to requested config. It is only legal to transition from one "
                    "ModelConfigList to another.",
                )
            if kind is None:
                log.info("Taking no action for empty config.")
                return
            entries, platforms = model_entries(new, self._platforms)
            old_names = set(self._platforms)
            self._config, self._platforms = new, platforms
            log.info("Adding/updating models.")
            self._manager.set_models(entries)
            self._manager.poll()
            self._await([e.name for e in entries if e.name not in old_names])
            log.info("Finished adding/updating models")

    def _await(self, names: list[str]) -> None:
        """WaitUntilModelsAvailable: every new model AVAILABLE, or UNKNOWN naming those that failed."""
        while not self._stop.is_set():
            failed = {n: self._manager.failures(n) for n in names if not self._manager.available(n)}
            if not failed:
                return
            if all(failed.values()):
                parts = "".join(
                    f"{{{{name: {name} version: {version}}} due to error: {error}}}, "
                    for name, errors in failed.items()
                    for version, error in errors.items()
                )
                raise ServingError(
                    grpc.StatusCode.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{parts}}}"
                )
            self._stop.wait(self._wait_poll_s)
            self._manager.poll()

    def poll_file(self, path: str) -> None:
        """PollFilesystemAndReloadConfig: errors are logged, the server keeps what it serves."""
        try:
            config = read_config_file(path)
        except ServingError as error:
            log.error("Failed to read ModelServerConfig file: %s", error.message)
            return
        try:
            self.reload(config)
        except ServingError as error:
            log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)
