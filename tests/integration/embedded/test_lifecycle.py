"""Command line errors as the binary reports them, clean shutdown on SIGTERM/SIGINT, and loading a new
version directory."""

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
        (["--model_base_path=/m", "--port=eighty"], "Couldn't interpret value eighty for flag port."),
        (["--model_base_path=/m", "--enable_batching=maybe"], "for flag enable_batching"),
        (["--port=8500"], "model_base_path"),
        (["--model_base_path=/m", "--batching_parameters_file=/b"], "enable_batching"),
        (["--model_config_file=/does/not/exist"], "NOT_FOUND: /does/not/exist"),
        (["--model_base_path=relative/m"], "Expected model default to have an absolute path"),
    ],
)
def test_bad_command_line_exits_255_with_message(flags: list[str], message: str) -> None:
    result = _run(*flags)
    assert result.returncode == 255  # the binary returns -1 from main
    assert message in result.stderr


def test_help_prints_the_usage_and_exits() -> None:
    result = _run("--model_base_path=/m", "--help")
    assert result.returncode == 255
    assert result.stdout.startswith("usage: tensorflow_model_server\nFlags:\n")


def test_ignored_arguments_are_reported_as_the_binary_reports_them() -> None:
    """The binary ignores what is no flag (stdout: "unknown argument" + usage) and carries on; here it
    carries on to the next error, and stderr says what was meant."""
    result = _run("--model_base_path=relative/m", "--use_tflite_model=true", "--port", "9000")
    assert result.stdout.startswith("unknown argument: --use_tflite_model=true\nusage:")
    assert "did you mean --prefer_tflite_model" in result.stderr
    assert "use --port=9000" in result.stderr
    assert "Expected model default to have an absolute path" in result.stderr  # it went on to start


def test_version_exits_before_reporting_ignored_arguments() -> None:
    result = _run("--version", "--no_such_flag=1")
    assert result.returncode == 0 and result.stdout.startswith("TensorFlow ModelServer: ")
    assert "unknown argument" not in result.stdout


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
