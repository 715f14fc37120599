"""ModelService.HandleReloadConfigRequest and --model_config_file_poll_wait_seconds, with TF Serving
2.19.1's checks, texts and status codes (server_core.cc, model_service_impl.cc)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from pytest_tfserving.embedded.launch import ServerProcess


def _config(
    *models: tuple[str, str], platform: str = "tensorflow"
) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models:
        entry = config.model_config_list.config.add()
        entry.name, entry.base_path, entry.model_platform = name, base_path, platform
    return config


def _status(stub: model_service_pb2_grpc.ModelServiceStub, name: str) -> list[int] | grpc.StatusCode:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    try:
        return [s.version for s in stub.GetModelStatus(request, timeout=30).model_version_status]
    except grpc.RpcError as error:
        return error.code()


@pytest.fixture
def models(half_plus_two: Path, tmp_path: Path) -> Path:
    """tmp/a/1 and tmp/b/00000002 (both half_plus_two), tmp/broken/1 (a SavedModel that cannot load)."""
    shutil.copytree(half_plus_two, tmp_path / "a" / "1")
    shutil.copytree(half_plus_two, tmp_path / "b" / "00000002")
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    return tmp_path


@pytest.fixture
def server(serve, models: Path) -> Iterator[ServerProcess]:
    config = models / "models.config"
    config.write_text(str(_config(("a", str(models / "a")))))
    yield serve(f"--model_config_file={config}")


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[model_service_pb2_grpc.ModelServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield model_service_pb2_grpc.ModelServiceStub(channel)


def _reload(stub, config: model_server_config_pb2.ModelServerConfig, *metrics: str):  # type: ignore[no-untyped-def]
    request = model_management_pb2.ReloadConfigRequest(config=config, metric_names=list(metrics))
    return stub.HandleReloadConfigRequest(request, timeout=120)


def test_reload_adds_and_removes_models(stub, server: ServerProcess, models: Path) -> None:
    assert _status(stub, "a") == [1]
    reply = _reload(stub, _config(("b", str(models / "b"))), "/tensorflow/serving/request_count")
    assert reply.status.error_code == 0 and [m.name for m in reply.metric] == [
        "/tensorflow/serving/request_count"
    ]
    assert _status(stub, "b") == [2]  # available when the call returns, zero-padded directory and all
    assert _status(stub, "a") == grpc.StatusCode.NOT_FOUND
    assert "Unloaded servable version {name: a version: 1}" in server.log()  # its session is closed


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            "duplicate",
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal to list model a multiple times in config list",
        ),
        (
            "relative",
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expected model r to have an absolute path or URI; got base_path()=r/dir",
        ),
        ("platform", grpc.StatusCode.INVALID_ARGUMENT, "Model p requests unsupported platform pytorch"),
        (
            "custom",
            grpc.StatusCode.INVALID_ARGUMENT,
            "ServerModelConfig type not supported by HandleReloadConfigRequest.",
        ),
        (
            "broken",
            grpc.StatusCode.UNKNOWN,
            "1 model(s) did not become available: {{{name: broken version: 1} due to error:",
        ),
    ],
)
def test_refused_reloads(stub, models: Path, config: str, code: grpc.StatusCode, message: str) -> None:
    configs = {
        "duplicate": _config(("a", str(models / "a")), ("a", str(models / "b"))),
        "relative": _config(("r", "r/dir")),
        "platform": _config(("p", str(models / "a")), platform="pytorch"),
        "custom": model_server_config_pb2.ModelServerConfig(custom_model_config={}),
        "broken": _config(("a", str(models / "a")), ("broken", str(models / "broken"))),
    }
    with pytest.raises(grpc.RpcError) as caught:
        _reload(stub, configs[config])
    assert caught.value.code() == code
    assert message in caught.value.details()
    assert _status(stub, "a") == [1]  # what was served before is still served


def test_config_file_is_polled(serve, models: Path) -> None:
    config = models / "models.config"
    config.write_text(str(_config(("a", str(models / "a")))))
    server = serve(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1")
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        config.write_text(str(_config(("b", str(models / "b")))))
        deadline = time.monotonic() + 60
        while _status(stub, "b") != [2]:
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)
        assert _status(stub, "a") == grpc.StatusCode.NOT_FOUND
        config.write_text("not a config")  # a broken file is logged and changes nothing
        time.sleep(2.5)
        assert _status(stub, "b") == [2]
    assert "Failed to read ModelServerConfig file: Invalid protobuf file" in server.log()
