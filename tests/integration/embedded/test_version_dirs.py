"""Version directories as TF Serving loads them: any all-digit name, zero-padded included (``00000123/``
is version 123, loaded from that very directory), under each version policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

CONFIG = """model_config_list {{
  config {{ name: "padded" base_path: "{root}/padded" model_platform: "tensorflow" }}
  config {{ name: "latest2" base_path: "{root}/latest2" model_platform: "tensorflow"
           model_version_policy {{ latest {{ num_versions: 2 }} }} }}
  config {{ name: "all" base_path: "{root}/all" model_platform: "tensorflow"
           model_version_policy {{ all {{ }} }} }}
  config {{ name: "specific" base_path: "{root}/specific" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 7 }} }} }}
}}
"""

LAYOUT = {  # model -> version directory names (no plain "123/" anywhere: the padded name must be read)
    "padded": ["00000123"],
    "latest2": ["0001", "00002", "3"],
    "all": ["01", "2"],
    "specific": ["007", "8"],
}


def _statuses(channel: grpc.Channel, model: str) -> list[int]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    return [s.version for s in stub.GetModelStatus(request, timeout=30).model_version_status]


def _predict(channel: grpc.Channel, model: str, version: int | None = None) -> predict_pb2.PredictResponse:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0]], dtype=tf.float32))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


def test_zero_padded_directories_load_under_every_policy(serve, half_plus_two: Path, tmp_path: Path) -> None:
    for model, names in LAYOUT.items():
        for name in names:
            shutil.copytree(half_plus_two, tmp_path / model / name)
    (tmp_path / "models.config").write_text(CONFIG.format(root=tmp_path))
    server = serve(f"--model_config_file={tmp_path / 'models.config'}", "--file_system_poll_wait_seconds=0")
    with grpc.insecure_channel(server.grpc_target) as channel:
        assert _statuses(channel, "padded") == [123]
        assert _statuses(channel, "latest2") == [3, 2]
        assert _statuses(channel, "all") == [2, 1]
        assert _statuses(channel, "specific") == [7]
        response = _predict(channel, "padded")
        assert response.model_spec.version.value == 123 and list(response.outputs["y"].float_val) == [3.0]
        assert _predict(channel, "specific", 7).model_spec.version.value == 7
        assert _predict(channel, "latest2", 2).model_spec.version.value == 2
    assert "Successfully loaded servable version {name: padded version: 123}" in server.log()
