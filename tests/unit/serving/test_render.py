"""ServerSpec rendered to tensorflow_model_server flags and files, each file parsed back."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from pytest_tfserving.serving.configs import parse_model_config
from pytest_tfserving.serving.protos import parse_batching_parameters, parse_monitoring_config
from pytest_tfserving.serving.render import ServerLayout, render_server
from pytest_tfserving.serving.spec import BatchingSpec, ModelSpec, ServerSpec, SpecError

LAYOUT = ServerLayout(
    grpc_port=8500, rest_port=8501, config_dir="/config", model_path=lambda m: f"/models/{m.name}"
)


def test_minimal_spec_emits_only_what_is_set() -> None:
    rendered = render_server(ServerSpec.single("tiny", "/host/tiny", prometheus_path=None), LAYOUT)
    assert rendered.flags == (
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/config/models.config",
    )
    assert set(rendered.files) == {"models.config"}
    assert parse_model_config(rendered.files["models.config"])[0].base_path == "/models/tiny"


def test_full_spec_renders_every_flag_in_order(real_protos: dict) -> None:
    batching = BatchingSpec(max_batch_size=32, batch_timeout_micros=500, allowed_batch_sizes=(8, 32))
    spec = ServerSpec(
        models=(ModelSpec("a", Path("/h/a"), variant="int8"), ModelSpec("b", Path("/h/b"))),
        intra_op=8,
        inter_op=8,
        rest_api_num_threads=4,
        grpc_max_threads=16,
        enable_batching=True,
        batching=batching,
        prefer_tflite_model=True,
        num_tflite_pools=2,
        num_tflite_interpreters_per_pool=3,
        enable_model_warmup=False,
        prometheus_path="/metrics",
        extra_flags=("--file_system_poll_wait_seconds=0",),
    )
    rendered = render_server(spec, ServerLayout(0, 0, "/tmp/cfg/", lambda m: str(m.base_path)))
    assert rendered.flags == (
        "--port=0",
        "--rest_api_port=0",
        "--model_config_file=/tmp/cfg/models.config",
        "--tensorflow_intra_op_parallelism=8",
        "--tensorflow_inter_op_parallelism=8",
        "--rest_api_num_threads=4",
        "--grpc_max_threads=16",
        "--enable_batching=true",
        "--batching_parameters_file=/tmp/cfg/batching.config",
        "--prefer_tflite_model=true",
        "--num_tflite_pools=2",
        "--num_tflite_interpreters_per_pool=3",
        "--monitoring_config_file=/tmp/cfg/monitoring.config",
        "--enable_model_warmup=false",
        "--file_system_poll_wait_seconds=0",
    )
    assert [e.name for e in parse_model_config(rendered.files["models.config"])] == ["a", "b"]
    assert parse_batching_parameters(rendered.files["batching.config"]) == batching
    text_format.Parse(rendered.files["batching.config"], real_protos["batching"].BatchingParameters())
    assert parse_monitoring_config(rendered.files["monitoring.config"]) == "/metrics"
    text_format.Parse(rendered.files["monitoring.config"], real_protos["monitoring"].MonitoringConfig())


def test_session_parallelism_and_batching_without_parameters() -> None:
    spec = ServerSpec.single("tiny", "/h", session_parallelism=4, enable_batching=True)
    rendered = render_server(spec, LAYOUT)
    assert "--tensorflow_session_parallelism=4" in rendered.flags
    assert "--enable_batching=true" in rendered.flags
    assert not any(f.startswith("--batching_parameters_file") for f in rendered.flags)
    assert "--monitoring_config_file=/config/monitoring.config" in rendered.flags
    assert parse_monitoring_config(rendered.files["monitoring.config"]) == "/monitoring/prometheus/metrics"


def test_render_validates_first() -> None:
    with pytest.raises(SpecError, match="prefer_tflite_model=True"):
        render_server(ServerSpec.single("q", "/h", variant="fp16", prefer_tflite_model=False), LAYOUT)
