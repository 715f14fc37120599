"""tensorflow_model_server 2.19.1's command line: every flag's name, type and default, and its grammar.

Read from tensorflow_serving/model_servers/main.cc and server.h at tag 2.19.1, and TensorFlow's
``Flags::Parse`` (tsl/util/command_line_flags.cc): an argument is ``--name=value`` (a bool may also be
a bare ``--name``; a value is true/false in any case, 1 or 0); numbers must be the whole value. An
argument that is no flag is *ignored* by the binary (it prints "unknown argument" and the usage, then
starts anyway), so ``--name value``, ``--noname`` or a typo silently do nothing there. A bad value of
a known flag stops it (usage, exit -1).

The embedded server parses its command line with this table (``embedded.flags``), and
``ServerSpec.extra_flags`` are checked against it when the spec is built (``check_extra_flag``), so a
typo fails before any server starts. Pure data and functions; no TensorFlow import.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Literal

FlagKind = Literal["int32", "int64", "bool", "float", "string"]


@dataclass(frozen=True)
class TfsFlag:
    """One flag of tensorflow_model_server: its C++ type and default (``per_cpu``: a default of
    ``per_cpu`` x the schedulable CPUs, as server.h computes it)."""

    name: str
    kind: FlagKind
    default: int | float | bool | str
    per_cpu: int = 0

    def default_value(self, cpus: int | None = None) -> int | float | bool | str:
        if self.per_cpu:
            return self.per_cpu * (cpus or schedulable_cpus())
        return self.default


def schedulable_cpus() -> int:
    """port::NumSchedulableCPUs: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


TFS_FLAGS: tuple[TfsFlag, ...] = (  # main.cc's order
    TfsFlag("port", "int32", 8500),
    TfsFlag("grpc_socket_path", "string", ""),
    TfsFlag("rest_api_port", "int32", 0),
    TfsFlag("rest_api_num_threads", "int32", 0, per_cpu=4),
    TfsFlag("rest_api_timeout_in_ms", "int32", 30000),
    TfsFlag("rest_api_enable_cors_support", "bool", False),
    TfsFlag("enable_batching", "bool", False),
    TfsFlag("allow_version_labels_for_unavailable_models", "bool", False),
    TfsFlag("batching_parameters_file", "string", ""),
    TfsFlag("enable_per_model_batching_parameters", "bool", False),
    TfsFlag("model_config_file", "string", ""),
    TfsFlag("model_config_file_poll_wait_seconds", "int32", 0),
    TfsFlag("model_name", "string", "default"),
    TfsFlag("model_base_path", "string", ""),
    TfsFlag("num_load_threads", "int32", 0),
    TfsFlag("num_unload_threads", "int32", 0),
    TfsFlag("max_num_load_retries", "int32", 5),
    TfsFlag("load_retry_interval_micros", "int64", 60_000_000),
    TfsFlag("file_system_poll_wait_seconds", "int32", 1),
    TfsFlag("flush_filesystem_caches", "bool", True),
    TfsFlag("tensorflow_session_parallelism", "int64", 0),
    TfsFlag("tensorflow_session_config_file", "string", ""),
    TfsFlag("tensorflow_intra_op_parallelism", "int64", 0),
    TfsFlag("tensorflow_inter_op_parallelism", "int64", 0),
    TfsFlag("use_alts_credentials", "bool", False),
    TfsFlag("ssl_config_file", "string", ""),
    TfsFlag("platform_config_file", "string", ""),
    TfsFlag("per_process_gpu_memory_fraction", "float", 0.0),
    TfsFlag("saved_model_tags", "string", "serve"),
    TfsFlag("grpc_channel_arguments", "string", ""),
    TfsFlag("grpc_max_threads", "int32", 0, per_cpu=4),
    TfsFlag("enable_model_warmup", "bool", True),
    TfsFlag("num_request_iterations_for_warmup", "int32", 0),
    TfsFlag("version", "bool", False),
    TfsFlag("monitoring_config_file", "string", ""),
    TfsFlag("remove_unused_fields_from_bundle_metagraph", "bool", True),
    TfsFlag("prefer_tflite_model", "bool", False),
    TfsFlag("num_tflite_pools", "int32", 0, per_cpu=1),
    TfsFlag("num_tflite_interpreters_per_pool", "int32", 1),
    TfsFlag("enable_signature_method_name_check", "bool", False),
    TfsFlag("xla_cpu_compilation_enabled", "bool", False),
    TfsFlag("xla_gpu_compilation_enabled", "bool", False),
    TfsFlag("enable_profiler", "bool", True),
    TfsFlag("thread_pool_factory_config_file", "string", ""),
    TfsFlag("mixed_precision", "string", ""),
    TfsFlag("skip_initialize_tpu", "bool", False),
    TfsFlag("enable_grpc_healthcheck_service", "bool", False),
    TfsFlag("enable_serialization_as_tensor_content", "bool", False),
)

FLAGS_BY_NAME: dict[str, TfsFlag] = {f.name: f for f in TFS_FLAGS}

LOOKALIKES: dict[str, str] = {
    "use_tflite_model": "prefer_tflite_model",
    "num_tflite_interpreters": "num_tflite_interpreters_per_pool",
    "enforce_session_run_timeout": "",  # a ServerCore option with no flag: cannot be set at all
}
"""Names people pass (and older versions of this project accepted) that 2.19.1 has no flag for."""

_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_FLOAT = re.compile(
    r"[ \t\n\v\f\r]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)",
    re.IGNORECASE,
)
_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class FlagValueError(ValueError):
    """A known flag with a value the binary refuses ("Couldn't interpret value V for flag F.")."""


def parse_value(flag: TfsFlag, raw: str | None) -> int | float | bool | str:
    """The value of ``--name=raw`` (``raw`` None: a bare ``--name``, bools only) as Flags::Parse reads it.

    ``sscanf("%d%c")`` takes the whole value or nothing; a number out of the type's range is refused
    here too (the binary's sscanf would wrap it, which no one means)."""
    if raw is None:
        if flag.kind != "bool":
            raise FlagValueError(f"--{flag.name} needs a value: --{flag.name}=...")
        return True
    if flag.kind == "string":
        return raw
    if flag.kind == "bool":
        if raw.lower() == "true" or raw == "1":
            return True
        if raw.lower() == "false" or raw == "0":
            return False
    elif flag.kind in _RANGES and _INT.fullmatch(raw):
        value = int(raw)
        low, high = _RANGES[flag.kind]
        if low <= value <= high:
            return value
    elif flag.kind == "float" and _FLOAT.fullmatch(raw):
        text = raw.strip(" \t\n\v\f\r")
        if "x" in text.lower():
            return float.fromhex(text)
        return float("nan") if "nan" in text.lower() else float(text)
    raise FlagValueError(f"Couldn't interpret value {raw} for flag {flag.name}.")


@dataclass(frozen=True)
class Parsed:
    """One argument as Flags::Parse sees it: a known flag with its value, or an argument it ignores."""

    argument: str
    flag: TfsFlag | None = None
    value: int | float | bool | str | None = None


def parse_argument(argument: str, table: dict[str, TfsFlag] = FLAGS_BY_NAME) -> Parsed:
    """Match one argument against ``table``; FlagValueError for a known flag with a bad value."""
    if not argument.startswith("--"):
        return Parsed(argument)
    name, eq, raw = argument[2:].partition("=")
    flag = table.get(name)
    if flag is None or (not eq and flag.kind != "bool"):  # "--port" alone matches no flag there
        return Parsed(argument)
    return Parsed(argument, flag, parse_value(flag, raw if eq else None))


def why_ignored(argument: str, following: str | None = None) -> str:
    """Why an argument is no flag to the binary (which ignores it), and what was probably meant."""
    if argument == "--":
        return "'--' ends the flags: it and every argument after it are no flags"
    if not argument.startswith("-"):
        return f"'{argument}' is not a flag (a value must be joined to its flag: --name=value)"
    body = argument.lstrip("-")
    name = body.split("=", 1)[0]
    if not argument.startswith("--"):
        return f"'{argument}' has one dash; tensorflow_model_server only reads --{body}"
    if name in FLAGS_BY_NAME:  # a non-bool without '=': "--port 8500"
        value = following if following is not None and not following.startswith("-") else "..."
        return f"'--{name}' has no '=value' (the binary has no '--{name} value' form: use --{name}={value})"
    if name.startswith("no") and FLAGS_BY_NAME.get(name[2:]) is not None:
        return f"'--{name}': the binary has no --noflag form, use --{name[2:]}=false"
    return f"'--{name}' is not a tensorflow_model_server 2.19.1 flag{suggestion(name)}"


def suggestion(name: str) -> str:
    """ ", did you mean --x?" naming the closest real flag, or ""."""
    if name in LOOKALIKES:
        meant = LOOKALIKES[name]
        return f", did you mean --{meant}?" if meant else " (it is no flag in 2.19.1 and cannot be set)"
    close = difflib.get_close_matches(name, list(FLAGS_BY_NAME), n=1, cutoff=0.6)
    return f", did you mean --{close[0]}?" if close else ""


def check_extra_flag(argument: str) -> TfsFlag:
    """One ``ServerSpec.extra_flags`` entry: a real 2.19.1 flag with a value it accepts, or ValueError
    saying what the real binary would do with it and what was probably meant."""
    try:
        parsed = parse_argument(argument)
    except FlagValueError as exc:
        raise ValueError(
            f"extra flag {argument!r}: {exc} tensorflow_model_server would refuse to start"
        ) from None
    if parsed.flag is None:
        raise ValueError(
            f"extra flag {argument!r}: {why_ignored(argument)} (tensorflow_model_server ignores such an "
            "argument, so it would silently do nothing there)"
        )
    return parsed.flag
