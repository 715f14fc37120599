"""A real redis-server per test (started by redis_service, persistence off) and PredictRequest builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.services.redis_service import LocalRedis, find_redis_server, start_local_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[LocalRedis]:
    if find_redis_server() is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    service = start_local_redis(tmp_path)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def predict_pb2() -> Any:
    from tensorflow_serving.apis import predict_pb2

    return predict_pb2


@pytest.fixture
def make_request(predict_pb2: Any) -> Callable[..., Any]:
    """PredictRequest for the tiny model's ``images`` input, filled with ``value``."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    def make(value: float = 0.5, *, model: str = "tiny", version: int | None = None,
             label: str = "", signature: str = "serving_default") -> Any:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        if label:
            request.model_spec.version_label = label
        shape = tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (1, 8, 8, 3)])
        request.inputs["images"].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[value] * 192))
        return request

    return make


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded TF-Serving-compatible server with the tiny model (Prometheus on)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pytest_tfserving.backends.embedded import EmbeddedBackend
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel
    from pytest_tfserving.serving.spec import ServerSpec

    root = tmp_path_factory.mktemp("cache-embedded")
    export_savedmodel(build_tiny_cnn(), root / "models" / "tiny" / "1")
    server = EmbeddedBackend().start(ServerSpec.single("tiny", root / "models" / "tiny"), root, 120.0)
    try:
        yield server
    finally:
        server.stop()
