"""Model config files written and read with TF Serving's own ModelServerConfig proto."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pytest_tfserving.serving.configs import ModelConfigEntry, model_config_text, parse_model_config
from pytest_tfserving.serving.spec import ModelSpec, SpecError, VersionPolicy

MODELS = (
    ModelSpec("latest_two", Path("/host/a"), version_policy=VersionPolicy("latest", num_versions=2)),
    ModelSpec("every", Path("/host/b"), variant="int8", version_policy=VersionPolicy("all")),
    ModelSpec("pinned", Path("/host/c"), version_policy=VersionPolicy("specific", versions=(1, 3))),
)


def _container_path(model: ModelSpec) -> str:
    return f"/models/{model.name}"


def test_model_config_text_is_a_real_model_server_config() -> None:
    text = model_config_text(MODELS, _container_path)
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    configs = parsed.model_config_list.config
    assert [c.name for c in configs] == ["latest_two", "every", "pinned"]
    assert [c.base_path for c in configs] == ["/models/latest_two", "/models/every", "/models/pinned"]
    assert {c.model_platform for c in configs} == {"tensorflow"}
    assert configs[0].model_version_policy.latest.num_versions == 2
    assert configs[1].model_version_policy.WhichOneof("policy_choice") == "all"
    assert list(configs[2].model_version_policy.specific.versions) == [1, 3]


def test_model_config_round_trips() -> None:
    entries = parse_model_config(model_config_text(MODELS, _container_path))
    assert entries == [
        ModelConfigEntry(m.name, f"/models/{m.name}", "tensorflow", m.version_policy) for m in MODELS
    ]


def test_hand_written_config_without_policy_gets_server_default() -> None:
    text = 'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" } }'
    assert parse_model_config(text) == [ModelConfigEntry("m", "/m", "tensorflow", VersionPolicy())]


STUDY_CONFIG = """
model_config_list {
  config {
    name: "resnet50"
    base_path: "/models/resnet50"
    model_platform: "tensorflow"
    platform_config {
      tensorflow {
        gpu_options { allow_growth: true }
        inter_op_parallelism_threads: 8
        intra_op_parallelism_threads: 8
      }
    }
  }
}
"""


def test_study_platform_config_is_refused_with_the_thread_flags() -> None:
    with pytest.raises(SpecError) as info:
        parse_model_config(STUDY_CONFIG)
    message = str(info.value)
    assert "--tensorflow_intra_op_parallelism" in message
    assert "--tensorflow_inter_op_parallelism" in message
    assert "has no platform_config" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model_config_list { config { name: "m" base_path: "/m" threads: 2 } }', "'threads' is no field"),
        ("model_config_list { config { name: ", "not a valid text ModelServerConfig"),
        ('model_config_list { config { base_path: "/m" model_platform: "tensorflow" } }', "has no name"),
        ('model_config_list { config { name: "m" model_platform: "tensorflow" } }', "base_path is empty"),
        ('model_config_list { config { name: "m" base_path: "/m" } }', "model_platform is not set"),
        (
            'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" } '
            'config { name: "m" base_path: "/n" model_platform: "tensorflow" } }',
            "appears twice",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" '
            "model_version_policy { specific { } } } }",
            "lists no versions",
        ),
    ],
)
def test_bad_model_config_raises_spec_error(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_model_config(text)


def test_model_config_text_refuses_bad_models() -> None:
    with pytest.raises(SpecError, match="no models"):
        model_config_text([], _container_path)
    with pytest.raises(SpecError, match="appears twice"):
        model_config_text([MODELS[0], MODELS[0]], _container_path)
