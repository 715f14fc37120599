"""Command line errors, clean shutdown on SIGTERM/SIGINT, and loading a new version directory."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from pytest_tfserving.embedded.flags import FlagError, parse_flags
from tests.integration.embedded.embedded_helpers import predict_request


def _run(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_tfserving.embedded", *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model_base_path=/m", "--no_such_flag=1"], "unknown command line flag 'no_such_flag'"),
        (["--model_base_path=/m", "--port=eighty"], "Illegal value 'eighty' specified for flag 'port'"),
        (["--model_base_path=/m", "--enable_batching=maybe"], "flag 'enable_batching'"),
        (["--port=8500"], "model_base_path"),
        (["--model_base_path=/m", "--batching_parameters_file=/b"], "enable_batching"),
        (["--model_config_file=/does/not/exist"], "/does/not/exist"),
    ],
)
def test_bad_command_line_exits_non_zero_with_message(flags: list[str], message: str) -> None:
    result = _run(*flags)
    assert result.returncode != 0
    assert message in result.stderr


def test_flag_syntax_like_tensorflow_model_server() -> None:
    flags = parse_flags(
        [
            "--port",
            "9000",
            "--enable_batching",
            "--rest_api_port=0",
            "--model_base_path=/m",
            "--prefer_tflite_model=false",
            "--tensorflow_intra_op_parallelism=2",
            "--rest_api_timeout_in_ms=100",
        ]
    )
    assert (flags.port, flags.enable_batching, flags.rest_api_port) == (9000, True, 0)
    assert flags.prefer_tflite_model is False and flags.threads == (2, 0)
    assert parse_flags(["--model_base_path=/m"]).rest_api_port is None  # REST off, as upstream
    with pytest.raises(FlagError):
        parse_flags(
            [
                "--model_base_path=/m",
                "--tensorflow_session_parallelism=1",
                "--tensorflow_intra_op_parallelism=1",
                "--tensorflow_inter_op_parallelism=1",
            ]
        )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(start, sig: signal.Signals) -> None:
    server = start()
    started = time.monotonic()
    server.process.send_signal(sig)
    assert server.process.wait(30) == 0
    assert time.monotonic() - started < 30
    assert "Traceback" not in server.log()


def _versions(stub: model_service_pb2_grpc.ModelServiceStub) -> list[int]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "tiny"
    return [s.version for s in stub.GetModelStatus(request, timeout=10).model_version_status]


def test_new_version_directory_is_loaded_and_old_one_unloaded(start, model_dir: Path) -> None:
    server = start("--file_system_poll_wait_seconds=1")
    with grpc.insecure_channel(server.grpc_target) as channel:
        status = model_service_pb2_grpc.ModelServiceStub(channel)
        assert _versions(status) == [1]
        shutil.copytree(model_dir / "1", model_dir / "tmp-2")
        (model_dir / "tmp-2").rename(model_dir / "2")  # appear atomically, as deploy tools do
        deadline = time.monotonic() + 60
        while _versions(status) != [2]:
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = predict.Predict(predict_request(np.zeros((1, 8, 8, 3), np.float32)), timeout=30)
        assert response.model_spec.version.value == 2
