"""tensorflow_model_server's command line, parsed the way the real binary parses it.

Every flag the real server knows is accepted (so backends can pass the same command line to either);
flags that change nothing here are accepted and ignored. Unknown flags and bad values raise
``FlagError``; ``main`` prints it with the usage text and exits non-zero, like the real binary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

_CPUS = os.cpu_count() or 1


class FlagError(ValueError):
    """A command line the real tensorflow_model_server would refuse."""


@dataclass
class Flags:
    """Parsed flags; names and defaults as in tensorflow_serving/model_servers/main.cc.

    ``port`` 0 and ``rest_api_port`` 0 given explicitly pick free ports (our extension); a
    ``rest_api_port`` left out disables REST as upstream does.
    """

    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int | None = None
    rest_api_num_threads: int = 4 * _CPUS
    rest_api_timeout_in_ms: int = 30000
    enable_batching: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    batching_parameters_file: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    file_system_poll_wait_seconds: int = 1
    flush_filesystem_caches: bool = True
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    ssl_config_file: str = ""
    platform_config_file: str = ""
    per_process_gpu_memory_fraction: float = 0.0
    saved_model_tags: str = "serve"
    grpc_channel_arguments: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    version: bool = False
    monitoring_config_file: str = ""
    remove_unused_fields_from_bundle_metagraph: bool = True
    prefer_tflite_model: bool = False
    use_tflite_model: bool = False
    num_tflite_pools: int = 1
    num_tflite_interpreters_per_pool: int = 1
    num_tflite_interpreters: int = 1
    enable_signature_method_name_check: bool = False
    xla_cpu_compilation_enabled: bool = False
    enable_profiler: bool = True
    grpc_max_threads: int = 4 * _CPUS
    thread_pool_factory_config_file: str = ""
    mixed_precision: str = ""
    skip_initialize_tpu: bool = False
    enforce_session_run_timeout: bool = True
    given: frozenset[str] = field(default_factory=frozenset)

    @property
    def threads(self) -> tuple[int, int]:
        """(intra, inter) as the real server resolves session_parallelism; 0 = TensorFlow's default."""
        if self.tensorflow_intra_op_parallelism > 0 or self.tensorflow_inter_op_parallelism > 0:
            return self.tensorflow_intra_op_parallelism, self.tensorflow_inter_op_parallelism
        return self.tensorflow_session_parallelism, self.tensorflow_session_parallelism


_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(Flags) if f.name != "given"}
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


def _convert(name: str, kind: str, raw: str) -> Any:
    try:
        if kind == "bool":
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if kind in ("int", "int | None"):
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise FlagError(f"Illegal value '{raw}' specified for flag '{name}' (expected {kind})") from None
    return raw


def parse_flags(argv: list[str]) -> Flags:
    """Parse ``--flag=value``, ``--flag value``, ``--flag`` (booleans) and ``--noflag``."""
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise FlagError(f"unexpected argument '{arg}' (flags look like --name=value)")
        body = arg.lstrip("-")
        name, eq, raw = body.partition("=")
        if name not in _TYPES and not eq and _TYPES.get(name[2:]) == "bool" and name.startswith("no"):
            values[name[2:]] = False
            continue
        if name not in _TYPES:
            raise FlagError(f"unknown command line flag '{name}'")
        kind = _TYPES[name]
        if not eq:
            if kind == "bool":
                nxt = argv[i].lower() if i < len(argv) else ""
                if nxt in _TRUE | _FALSE and not nxt.startswith("-"):
                    raw, i = argv[i], i + 1
                else:
                    values[name] = True
                    continue
            else:
                if i >= len(argv):
                    raise FlagError(f"flag '{name}' is missing its value")
                raw, i = argv[i], i + 1
        values[name] = _convert(name, kind, raw)
    flags = Flags(**values, given=frozenset(values))
    _check(flags)
    return flags


def _check(flags: Flags) -> None:
    """Refuse values the real server refuses at start, with its reasons."""
    if flags.version:
        return
    if not flags.model_base_path and not flags.model_config_file:
        raise FlagError(
            "Both server_options.model_base_path and server_options.model_config_file are empty! "
            "Pass --model_base_path=DIR (with --model_name) or --model_config_file=FILE"
        )
    if flags.port < 0 or flags.port > 65535:
        raise FlagError(f"--port={flags.port} is not a TCP port")
    if flags.rest_api_port is not None and not 0 <= flags.rest_api_port <= 65535:
        raise FlagError(f"--rest_api_port={flags.rest_api_port} is not a TCP port")
    if flags.batching_parameters_file and not flags.enable_batching:
        raise FlagError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if (
        flags.tensorflow_intra_op_parallelism > 0
        and flags.tensorflow_inter_op_parallelism > 0
        and flags.tensorflow_session_parallelism > 0
    ):
        raise FlagError(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
        )
    for name in (
        "rest_api_num_threads",
        "grpc_max_threads",
        "num_tflite_pools",
        "num_tflite_interpreters_per_pool",
    ):
        if getattr(flags, name) < 1:
            raise FlagError(f"--{name} must be at least 1, got {getattr(flags, name)}")
    for name in (
        "tensorflow_session_parallelism",
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
    ):
        if getattr(flags, name) < 0:
            raise FlagError(f"--{name} must be >= 0, got {getattr(flags, name)}")


def usage() -> str:
    """The flag list printed with a flag error, like the real binary's usage text."""
    lines = ["usage: python -m pytest_tfserving.embedded [--flag=value ...]", "Flags:"]
    defaults = Flags()
    for name, kind in _TYPES.items():
        default = getattr(defaults, name)
        lines.append(f"\t--{name}={0 if default is None else default!s}\t{kind.replace(' | None', '')}")
    return "\n".join(lines)
