"""Our ModelServerConfig descriptors (for the install without TensorFlow) are upstream's, field for field."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, text_format
from tensorflow_serving.config import (
    file_system_storage_path_source_pb2,
    log_collector_config_pb2,
    logging_config_pb2,
    model_server_config_pb2,
)

from pytest_tfserving.serving.config_protos import config_message, file_descriptors

WHEEL_MODULES = (
    log_collector_config_pb2,
    logging_config_pb2,
    file_system_storage_path_source_pb2,
    model_server_config_pb2,
)


@pytest.mark.parametrize("index", range(len(WHEEL_MODULES)), ids=lambda i: WHEEL_MODULES[i].__name__)
def test_descriptor_equals_the_wheels(index: int) -> None:
    wheel = descriptor_pb2.FileDescriptorProto()
    WHEEL_MODULES[index].DESCRIPTOR.CopyToProto(wheel)
    wheel.ClearField("options")  # go_package, cc_enable_arenas: nothing a text config can see
    ours = file_descriptors()[index]
    assert text_format.MessageToString(ours) == text_format.MessageToString(wheel)


def test_config_bytes_read_by_the_wheels_class() -> None:
    ours = config_message("ModelServerConfig")
    text_format.Parse(
        'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" '
        "model_version_policy { specific { versions: 3 } } version_labels { key: 'stable' value: 3 } "
        'logging_config { sampling_config { sampling_rate: 0.5 } } } }',
        ours,
    )
    wheel = model_server_config_pb2.ModelServerConfig.FromString(ours.SerializeToString())
    assert wheel.model_config_list.config[0].version_labels["stable"] == 3
    assert wheel.SerializeToString(deterministic=True) == ours.SerializeToString(deterministic=True)


def test_private_pool_leaves_the_wheels_classes_alone() -> None:
    config_message("ModelServerConfig")
    assert type(config_message("ModelConfig")) is not model_server_config_pb2.ModelConfig
    wheel = model_server_config_pb2.ModelServerConfig()
    assert wheel.DESCRIPTOR.full_name == "tensorflow.serving.ModelServerConfig"
