"""The embedded server's command line is tensorflow_model_server 2.19.1's: same flags and defaults,
ignored arguments ignored (with a warning), bad values refused, unimplemented flags flagged."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_tfserving.embedded.flags import (
    EMBEDDED_FLAGS,
    FIELD_NAMES,
    NO_EFFECT,
    FlagError,
    Flags,
    parse_flags,
    usage,
)
from pytest_tfserving.serving.tfs_flags import TFS_FLAGS, schedulable_cpus

BASE = ["--model_base_path=/m"]


def test_fields_are_the_binary_flags_plus_ours() -> None:
    assert {f.name for f in TFS_FLAGS} | set(EMBEDDED_FLAGS) == FIELD_NAMES


@pytest.mark.parametrize("flag", TFS_FLAGS, ids=lambda f: f.name)
def test_defaults_are_the_binary_defaults(flag: object) -> None:
    assert getattr(Flags(), flag.name) == flag.default_value(schedulable_cpus())  # type: ignore[attr-defined]


def test_no_effect_names_only_real_flags() -> None:
    assert set(NO_EFFECT) <= {f.name for f in TFS_FLAGS}


def test_values_are_parsed_and_remembered_as_given() -> None:
    flags = parse_flags(
        [*BASE, "--port=9000", "--enable_batching", "--rest_api_port=0", "--prefer_tflite_model=FALSE"]
    )
    assert (flags.port, flags.enable_batching, flags.rest_api_port, flags.prefer_tflite_model) == (
        9000,
        True,
        0,
        False,
    )
    assert flags.given == {
        "model_base_path",
        "port",
        "enable_batching",
        "rest_api_port",
        "prefer_tflite_model",
    }
    assert flags.rest_enabled  # an explicit 0: a free port (ours)
    assert not parse_flags(BASE).rest_enabled  # left out: REST off, as upstream
    assert parse_flags([*BASE, "--port=7", "--port=8"]).port == 8  # the last one wins


@pytest.mark.parametrize(
    ("argv", "warning"),
    [
        (["--use_tflite_model=true"], "did you mean --prefer_tflite_model"),
        (["--num_tflite_interpreters=4"], "did you mean --num_tflite_interpreters_per_pool"),
        (["--enforce_session_run_timeout=false"], "cannot be set"),
        (["--noenable_batching"], "use --enable_batching=false"),
        (["--port", "9000"], "use --port=9000"),
        (["--enable_batchng"], "did you mean --enable_batching"),
    ],
)
def test_arguments_the_binary_ignores_are_ignored_with_a_warning(argv: list[str], warning: str) -> None:
    flags = parse_flags([*BASE, *argv])
    assert flags.ignored == tuple(argv)
    assert any(warning in w for w in flags.warnings()), flags.warnings()
    assert flags == dataclasses.replace(parse_flags(BASE), ignored=tuple(argv))  # nothing else changed


def test_a_bool_flag_then_a_value_sets_the_flag_and_ignores_the_value() -> None:
    flags = parse_flags([*BASE, "--enable_batching", "false"])
    assert flags.enable_batching is True and flags.ignored == ("false",)


def test_double_dash_ends_the_flags() -> None:
    flags = parse_flags([*BASE, "--", "--port=1"])
    assert flags.port == 8500 and flags.ignored == ("--", "--port=1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port=eighty"], "Couldn't interpret value eighty for flag port."),
        (["--enable_batching=maybe"], "Couldn't interpret value maybe for flag enable_batching."),
        (["--help"], "--help"),
        (["--port=1"], None),
    ],
)
def test_bad_values_stop_the_server(argv: list[str], message: str | None) -> None:
    if message is None:
        parse_flags([*BASE, *argv])
        return
    with pytest.raises(FlagError, match=message):
        parse_flags([*BASE, *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "model_base_path and server_options.model_config_file are empty"),
        ([*BASE, "--batching_parameters_file=/b"], "enable_batching to true"),
        ([*BASE, "--use_alts_credentials", "--ssl_config_file=/s"], "use_alts_credentials must be false"),
        (
            [*BASE, *(f"--tensorflow_{k}_parallelism=1" for k in ("session", "intra_op", "inter_op"))],
            "You cannot configure all",
        ),
    ],
)
def test_what_build_and_start_refuses(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        parse_flags(argv)


def test_unimplemented_real_flags_are_accepted_with_a_warning() -> None:
    flags = parse_flags([*BASE, "--enable_grpc_healthcheck_service", "--ssl_config_file=/tls"])
    assert flags.enable_grpc_healthcheck_service and flags.ssl_config_file == "/tls"
    warned = [w for w in flags.warnings() if "no effect" in w]
    assert len(warned) == 2 and any("--ssl_config_file" in w for w in warned)
    assert parse_flags(BASE).warnings() == []


def test_loopback_by_default_and_free_port_extensions() -> None:
    flags = parse_flags(BASE)
    assert flags.bind_address == "127.0.0.1"
    assert parse_flags([*BASE, "--bind_address=0.0.0.0"]).bind_address == "0.0.0.0"
    assert parse_flags([*BASE, "--port=0"]).grpc_tcp_enabled  # ours: a free port
    assert not parse_flags([*BASE, "--port=0", "--grpc_socket_path=/s"]).grpc_tcp_enabled  # upstream


def test_usage_lists_every_flag_with_its_default() -> None:
    text = usage()
    assert text.startswith("usage: tensorflow_model_server\nFlags:\n")
    assert '\t--model_name="default"' in text and "--per_process_gpu_memory_fraction=0.000000" in text
    assert all(f"--{f.name}=" in text for f in TFS_FLAGS)
