"""The embedded server's command line: tensorflow_model_server 2.19.1's flags, parsed as the binary does.

The table (names, types, defaults) is ``serving.tfs_flags``. Like the binary, an argument that is no
flag (a typo, ``--name value``, ``--noname``, ``use_tflite_model``) is ignored: stdout gets "unknown
argument" and the usage, and we add a warning saying what was probably meant. A known flag with a bad
value stops the server (usage, exit 255), as it stops the binary. Real flags this server does not
implement are accepted with a warning that they have no effect here (``NO_EFFECT``).

Our own additions, which tensorflow_model_server does not have (the real binary would ignore them):
``--bind_address`` (default 127.0.0.1: a test tool on a shared runner listens on loopback only; the
stand-in image passes 0.0.0.0), and explicit ``--port=0``/``--rest_api_port=0`` meaning "pick a free
port" (the binary refuses the first and disables REST with the second).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from pytest_tfserving.serving.tfs_flags import (
    FLAGS_BY_NAME,
    TFS_FLAGS,
    FlagValueError,
    TfsFlag,
    parse_argument,
    schedulable_cpus,
    why_ignored,
)

LOOPBACK = "127.0.0.1"
EMBEDDED_FLAGS: dict[str, TfsFlag] = {"bind_address": TfsFlag("bind_address", "string", LOOPBACK)}
"""Flags only the embedded server knows."""

NO_EFFECT: dict[str, str] = {
    "rest_api_timeout_in_ms": "REST requests run without a deadline",
    "allow_version_labels_for_unavailable_models": "version labels are not served",
    "enable_per_model_batching_parameters": "batching_params.pbtxt in a model directory is not read",
    "num_load_threads": "versions load one after another",
    "num_unload_threads": "versions unload one after another",
    "max_num_load_retries": "a version that fails to load is not retried",
    "load_retry_interval_micros": "a version that fails to load is not retried",
    "flush_filesystem_caches": "there are no filesystem caches to flush",
    "use_alts_credentials": "gRPC is served without credentials",
    "ssl_config_file": "gRPC is served without TLS",
    "platform_config_file": "only the built-in TensorFlow platform is served",
    "remove_unused_fields_from_bundle_metagraph": "metagraphs are kept as loaded",
    "xla_cpu_compilation_enabled": "XLA JIT follows TensorFlow's defaults",
    "xla_gpu_compilation_enabled": "XLA JIT follows TensorFlow's defaults",
    "thread_pool_factory_config_file": "requests run on the default thread pools",
    "mixed_precision": "models run in the precision they were saved in",
    "skip_initialize_tpu": "there is no TPU support",
    "enable_grpc_healthcheck_service": "there is no grpc.health.v1 service",
}
"""Real flags accepted here that change nothing (each with what happens instead)."""

_TABLE: dict[str, TfsFlag] = {**FLAGS_BY_NAME, **EMBEDDED_FLAGS}


class FlagError(ValueError):
    """A command line the real tensorflow_model_server would refuse to start with."""


@dataclass
class Flags:
    """Parsed flags; names and defaults as in tensorflow_serving/model_servers/main.cc and server.h
    (tests/unit/embedded/test_flags.py holds them to ``serving.tfs_flags.TFS_FLAGS``)."""

    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    rest_api_num_threads: int = field(default_factory=lambda: 4 * schedulable_cpus())
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    enable_batching: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    batching_parameters_file: str = ""
    enable_per_model_batching_parameters: bool = False
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
    tensorflow_session_config_file: str = ""
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    use_alts_credentials: bool = False
    ssl_config_file: str = ""
    platform_config_file: str = ""
    per_process_gpu_memory_fraction: float = 0.0
    saved_model_tags: str = "serve"
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = field(default_factory=lambda: 4 * schedulable_cpus())
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    version: bool = False
    monitoring_config_file: str = ""
    remove_unused_fields_from_bundle_metagraph: bool = True
    prefer_tflite_model: bool = False
    num_tflite_pools: int = field(default_factory=schedulable_cpus)
    num_tflite_interpreters_per_pool: int = 1
    enable_signature_method_name_check: bool = False
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    enable_profiler: bool = True
    thread_pool_factory_config_file: str = ""
    mixed_precision: str = ""
    skip_initialize_tpu: bool = False
    enable_grpc_healthcheck_service: bool = False
    enable_serialization_as_tensor_content: bool = False
    bind_address: str = LOOPBACK  # ours, see the module docstring
    given: frozenset[str] = field(default_factory=frozenset)
    ignored: tuple[str, ...] = ()  # arguments the binary ignores, as given

    @property
    def threads(self) -> tuple[int, int]:
        """(intra, inter) as the real server resolves session_parallelism; 0 = TensorFlow's default."""
        if self.tensorflow_intra_op_parallelism > 0 or self.tensorflow_inter_op_parallelism > 0:
            return self.tensorflow_intra_op_parallelism, self.tensorflow_inter_op_parallelism
        return self.tensorflow_session_parallelism, self.tensorflow_session_parallelism

    @property
    def rest_enabled(self) -> bool:
        """REST is served for a non-zero port, or for an explicit 0 (a free port: ours)."""
        return self.rest_api_port != 0 or "rest_api_port" in self.given

    @property
    def grpc_tcp_enabled(self) -> bool:
        """gRPC on TCP unless ``--port=0`` comes with a socket path (then UNIX socket only, as upstream);
        ``--port=0`` alone picks a free port (ours: the binary refuses it)."""
        return self.port != 0 or not self.grpc_socket_path

    def warnings(self) -> list[str]:
        """What the binary would do differently, or silently, with this command line."""
        notes = [
            f"--{name} has no effect in the embedded server ({why}); tensorflow_model_server honours it"
            for name, why in NO_EFFECT.items()
            if name in self.given
        ]
        for i, argument in enumerate(self.ignored):
            following = self.ignored[i + 1] if i + 1 < len(self.ignored) else None
            notes.append(
                f"argument ignored, as tensorflow_model_server ignores it: {why_ignored(argument, following)}"
            )
        return notes


FIELD_NAMES = frozenset(f.name for f in fields(Flags)) - {"given", "ignored"}


def parse_flags(argv: list[str]) -> Flags:
    """Flags::Parse over ``argv``, then the checks Server::BuildAndStart makes before loading models.

    Raises FlagError for a known flag with a bad value, for ``--help`` as the first ignored argument
    (the binary prints its usage and exits) and for option combinations the server refuses."""
    values: dict[str, object] = {}
    ignored: list[str] = []
    errors: list[str] = []
    for i, argument in enumerate(argv):
        if argument == "--":
            ignored.extend(argv[i:])
            break
        try:
            parsed = parse_argument(argument, _TABLE)
        except FlagValueError as exc:
            errors.append(str(exc))
            continue
        if parsed.flag is None:
            ignored.append(argument)
        else:
            values[parsed.flag.name] = parsed.value
    if errors:
        raise FlagError("\n".join(errors))
    if ignored and ignored[0] == "--help":
        raise FlagError("--help")
    flags = Flags(**values, given=frozenset(values), ignored=tuple(ignored))  # type: ignore[arg-type]
    _check(flags)
    return flags


def _check(flags: Flags) -> None:
    """Refuse what the real server refuses at start, with its reasons (server.cc BuildAndStart)."""
    if flags.version:
        return
    if flags.use_alts_credentials and flags.ssl_config_file:
        raise FlagError("Either use_alts_credentials must be false or ssl_config_file must be empty.")
    if not flags.model_base_path and not flags.model_config_file:
        raise FlagError("Both server_options.model_base_path and server_options.model_config_file are empty!")
    if not 0 <= flags.port <= 65535:
        raise FlagError(f"--port={flags.port} is not a TCP port")
    if not 0 <= flags.rest_api_port <= 65535:
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
    if not 0.0 <= flags.per_process_gpu_memory_fraction <= 1.0:
        raise FlagError(
            f"--per_process_gpu_memory_fraction={flags.per_process_gpu_memory_fraction} must be "
            "between 0.0 and 1.0"
        )


def usage(program: str = "tensorflow_model_server") -> str:
    """Flags::Usage: the text the binary prints with an unknown argument or a bad value."""
    lines = [f"usage: {program}", "Flags:"]
    cpus = schedulable_cpus()
    for flag in (*TFS_FLAGS, *EMBEDDED_FLAGS.values()):
        value = flag.default_value(cpus)
        if flag.kind == "bool":
            shown = "true" if value else "false"
        elif flag.kind == "string":
            shown = f'"{value}"'
        elif flag.kind == "float":
            shown = f"{value:f}"
        else:
            shown = str(value)
        lines.append(f"\t{f'--{flag.name}={shown}':<33}\t{flag.kind}\t")
    return "\n".join(lines) + "\n"
