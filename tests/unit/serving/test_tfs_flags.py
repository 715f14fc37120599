"""tensorflow_model_server 2.19.1's flag table and grammar, and ServerSpec.extra_flags checked against it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_tfserving.serving.spec import ServerSpec, SpecError
from pytest_tfserving.serving.tfs_flags import (
    FLAGS_BY_NAME,
    TFS_FLAGS,
    FlagValueError,
    check_extra_flag,
    parse_argument,
    parse_value,
)

# The 48 flags of tensorflow_serving/model_servers/main.cc at tag 2.19.1, with their C++ types.
MAIN_CC_2_19_1 = {
    "port": "int32", "grpc_socket_path": "string", "rest_api_port": "int32",
    "rest_api_num_threads": "int32", "rest_api_timeout_in_ms": "int32",
    "rest_api_enable_cors_support": "bool", "enable_batching": "bool",
    "allow_version_labels_for_unavailable_models": "bool", "batching_parameters_file": "string",
    "enable_per_model_batching_parameters": "bool", "model_config_file": "string",
    "model_config_file_poll_wait_seconds": "int32", "model_name": "string", "model_base_path": "string",
    "num_load_threads": "int32", "num_unload_threads": "int32", "max_num_load_retries": "int32",
    "load_retry_interval_micros": "int64", "file_system_poll_wait_seconds": "int32",
    "flush_filesystem_caches": "bool", "tensorflow_session_parallelism": "int64",
    "tensorflow_session_config_file": "string", "tensorflow_intra_op_parallelism": "int64",
    "tensorflow_inter_op_parallelism": "int64", "use_alts_credentials": "bool",
    "ssl_config_file": "string", "platform_config_file": "string",
    "per_process_gpu_memory_fraction": "float", "saved_model_tags": "string",
    "grpc_channel_arguments": "string", "grpc_max_threads": "int32", "enable_model_warmup": "bool",
    "num_request_iterations_for_warmup": "int32", "version": "bool", "monitoring_config_file": "string",
    "remove_unused_fields_from_bundle_metagraph": "bool", "prefer_tflite_model": "bool",
    "num_tflite_pools": "int32", "num_tflite_interpreters_per_pool": "int32",
    "enable_signature_method_name_check": "bool", "xla_cpu_compilation_enabled": "bool",
    "xla_gpu_compilation_enabled": "bool", "enable_profiler": "bool",
    "thread_pool_factory_config_file": "string", "mixed_precision": "string",
    "skip_initialize_tpu": "bool", "enable_grpc_healthcheck_service": "bool",
    "enable_serialization_as_tensor_content": "bool",
}  # fmt: skip


def test_table_is_main_cc_of_2_19_1() -> None:
    assert {f.name: f.kind for f in TFS_FLAGS} == MAIN_CC_2_19_1
    assert len(TFS_FLAGS) == len(FLAGS_BY_NAME) == 48


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("port", 8500),
        ("rest_api_port", 0),  # REST is off unless asked for
        ("model_name", "default"),
        ("saved_model_tags", "serve"),
        ("num_request_iterations_for_warmup", 0),
        ("load_retry_interval_micros", 60_000_000),
        ("enable_model_warmup", True),
        ("file_system_poll_wait_seconds", 1),
        ("num_tflite_interpreters_per_pool", 1),
    ],
)
def test_defaults_of_server_h(name: str, default: object) -> None:
    assert FLAGS_BY_NAME[name].default_value(cpus=3) == default


def test_cpu_scaled_defaults() -> None:
    assert FLAGS_BY_NAME["grpc_max_threads"].default_value(cpus=3) == 12
    assert FLAGS_BY_NAME["rest_api_num_threads"].default_value(cpus=3) == 12
    assert FLAGS_BY_NAME["num_tflite_pools"].default_value(cpus=3) == 3


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("--port=9000", 9000),
        ("--port= 9000", 9000),  # sscanf skips leading blanks
        ("--port=+7", 7),
        ("--enable_batching", True),
        ("--enable_batching=TRUE", True),
        ("--enable_batching=0", False),
        ("--per_process_gpu_memory_fraction=0.25", 0.25),
        ("--per_process_gpu_memory_fraction=1e-1", 0.1),
        ("--per_process_gpu_memory_fraction=0x1p-2", 0.25),
        ("--model_name=", ""),
        ("--grpc_channel_arguments=a=1,b=x", "a=1,b=x"),
        ("--load_retry_interval_micros=9000000000", 9_000_000_000),
    ],
)
def test_values_parse_as_flags_parse_does(argument: str, value: object) -> None:
    parsed = parse_argument(argument)
    assert parsed.flag is not None and parsed.value == value


@pytest.mark.parametrize(
    "argument",
    [
        "--port=80x",
        "--port=",
        "--port=1.5",
        "--port=4294967296",  # past int32
        "--enable_batching=yes",
        "--enable_batching=",
        "--per_process_gpu_memory_fraction=half",
        "--per_process_gpu_memory_fraction=1_0",
    ],
)
def test_bad_values_of_known_flags_are_refused(argument: str) -> None:
    with pytest.raises(FlagValueError, match="Couldn't interpret value"):
        parse_argument(argument)


def test_nan_is_a_float_value() -> None:
    assert math.isnan(float(parse_value(FLAGS_BY_NAME["per_process_gpu_memory_fraction"], "nan")))


@pytest.mark.parametrize(
    "argument",
    ["--port", "--noenable_batching", "-port=1", "port=1", "--use_tflite_model=true", "--enable_batchingx"],
)
def test_arguments_the_binary_ignores(argument: str) -> None:
    assert parse_argument(argument).flag is None


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--enable_batchng=true", "did you mean --enable_batching"),
        ("--use_tflite_model=true", "did you mean --prefer_tflite_model"),
        ("--num_tflite_interpreters=2", "did you mean --num_tflite_interpreters_per_pool"),
        ("--enforce_session_run_timeout=false", "cannot be set"),
        ("--noenable_model_warmup", "use --enable_model_warmup=false"),
        ("--file_system_poll_wait_seconds", "no '--file_system_poll_wait_seconds value' form"),
        ("-enable_batching", "one dash"),
        ("enable_batching", "is not a flag"),
        ("--file_system_poll_wait_seconds=often", "Couldn't interpret value often"),
    ],
)
def test_extra_flags_fail_at_spec_time_naming_the_real_flag(tmp_path: Path, flag: str, message: str) -> None:
    spec = ServerSpec.single("m", tmp_path, extra_flags=(flag,))
    with pytest.raises(SpecError, match=message):
        spec.validate()


def test_real_flags_pass_the_spec_check(tmp_path: Path) -> None:
    flags = (
        "--enable_grpc_healthcheck_service",
        "--rest_api_enable_cors_support=true",
        "--xla_gpu_compilation_enabled=1",
    )
    ServerSpec.single("m", tmp_path, extra_flags=flags).validate()
    assert check_extra_flag("--per_process_gpu_memory_fraction=0.3").name == "per_process_gpu_memory_fraction"
