"""TF Serving's ModelServerConfig and the config protos it uses, built from upstream's descriptors.

The tensorflow-serving-api wheel has generated classes for them, but it requires TensorFlow (about
2 GB), and the docker and binary backends only write and check a text ``--model_config_file``: the
light install (no ``[tf]`` extra) must do that too. The descriptors below are upstream's
(tensorflow_serving/config/*.proto, file options left out) in text form; a test checks them against
the wheel's. They live in a private descriptor pool, so they never clash with the wheel's classes when
both are loaded (the embedded server loads both).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, text_format

PACKAGE = "tensorflow.serving"

_LOG_COLLECTOR_CONFIG = """
name: "tensorflow_serving/config/log_collector_config.proto"
package: "tensorflow.serving"
message_type {
  name: "LogCollectorConfig"
  field { name: "type" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "filename_prefix" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
}
syntax: "proto3"
"""

_LOGGING_CONFIG = """
name: "tensorflow_serving/config/logging_config.proto"
package: "tensorflow.serving"
dependency: "google/protobuf/any.proto"
dependency: "tensorflow_serving/config/log_collector_config.proto"
message_type {
  name: "PerTaskSamplingConfig"
  field { name: "dc" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field {
    name: "task_index"
    number: 2
    label: LABEL_OPTIONAL
    type: TYPE_INT32
    oneof_index: 0
    proto3_optional: true
  }
  field { name: "sampling_rate" number: 3 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  oneof_decl { name: "_task_index" }
}
message_type {
  name: "SamplingConfig"
  field { name: "sampling_rate" number: 1 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field {
    name: "per_task_sampling_configs"
    number: 3
    label: LABEL_REPEATED
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.PerTaskSamplingConfig"
  }
  field { name: "attributes" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
  enum_type {
    name: "Attributes"
    value { name: "ATTR_DEFAULT" number: 0 }
    value { name: "ATTR_REQUEST_ORIGIN" number: 1 }
    value { name: "ATTR_REQUEST_CRITICALITY" number: 2 }
  }
}
message_type {
  name: "LoggingConfig"
  field {
    name: "log_collector_config"
    number: 1
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.LogCollectorConfig"
  }
  field {
    name: "sampling_config"
    number: 2
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.SamplingConfig"
  }
  field {
    name: "custom_logging_config"
    number: 3
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".google.protobuf.Any"
  }
}
syntax: "proto3"
"""

_FILE_SYSTEM_STORAGE_PATH_SOURCE = """
name: "tensorflow_serving/config/file_system_storage_path_source.proto"
package: "tensorflow.serving"
message_type {
  name: "FileSystemStoragePathSourceConfig"
  field {
    name: "servables"
    number: 5
    label: LABEL_REPEATED
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableToMonitor"
  }
  field { name: "file_system_poll_wait_seconds" number: 3 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field {
    name: "fail_if_zero_versions_at_startup"
    number: 4
    label: LABEL_OPTIONAL
    type: TYPE_BOOL
    options { deprecated: true }
  }
  field { name: "servable_versions_always_present" number: 6 label: LABEL_OPTIONAL type: TYPE_BOOL }
  nested_type {
    name: "ServableVersionPolicy"
    field {
      name: "latest"
      number: 100
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy.Latest"
      oneof_index: 0
    }
    field {
      name: "all"
      number: 101
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy.All"
      oneof_index: 0
    }
    field {
      name: "specific"
      number: 102
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy.Specific"
      oneof_index: 0
    }
    nested_type {
      name: "Latest"
      field { name: "num_versions" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT32 }
    }
    nested_type { name: "All" }
    nested_type {
      name: "Specific"
      field { name: "versions" number: 1 label: LABEL_REPEATED type: TYPE_INT64 }
    }
    oneof_decl { name: "policy_choice" }
  }
  nested_type {
    name: "ServableToMonitor"
    field { name: "servable_name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "base_path" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    field {
      name: "servable_version_policy"
      number: 4
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy"
    }
    reserved_range { start: 3 end: 4 }
  }
  reserved_range { start: 1 end: 2 }
  reserved_range { start: 2 end: 3 }
}
syntax: "proto3"
"""

_MODEL_SERVER_CONFIG = """
name: "tensorflow_serving/config/model_server_config.proto"
package: "tensorflow.serving"
dependency: "google/protobuf/any.proto"
dependency: "tensorflow_serving/config/file_system_storage_path_source.proto"
dependency: "tensorflow_serving/config/logging_config.proto"
message_type {
  name: "ModelConfig"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "base_path" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field {
    name: "model_type"
    number: 3
    label: LABEL_OPTIONAL
    type: TYPE_ENUM
    type_name: ".tensorflow.serving.ModelType"
    options { deprecated: true }
  }
  field { name: "model_platform" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
  field {
    name: "model_version_policy"
    number: 7
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy"
  }
  field {
    name: "version_labels"
    number: 8
    label: LABEL_REPEATED
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.ModelConfig.VersionLabelsEntry"
  }
  field {
    name: "logging_config"
    number: 6
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.LoggingConfig"
  }
  nested_type {
    name: "VersionLabelsEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
    options { map_entry: true }
  }
  reserved_range { start: 5 end: 6 }
  reserved_range { start: 9 end: 10 }
}
message_type {
  name: "ModelConfigList"
  field {
    name: "config"
    number: 1
    label: LABEL_REPEATED
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.ModelConfig"
  }
}
message_type {
  name: "ModelServerConfig"
  field {
    name: "model_config_list"
    number: 1
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".tensorflow.serving.ModelConfigList"
    oneof_index: 0
  }
  field {
    name: "custom_model_config"
    number: 2
    label: LABEL_OPTIONAL
    type: TYPE_MESSAGE
    type_name: ".google.protobuf.Any"
    oneof_index: 0
  }
  oneof_decl { name: "config" }
}
enum_type {
  name: "ModelType"
  value {
    name: "MODEL_TYPE_UNSPECIFIED"
    number: 0
    options { deprecated: true }
  }
  value {
    name: "TENSORFLOW"
    number: 1
    options { deprecated: true }
  }
  value {
    name: "OTHER"
    number: 2
    options { deprecated: true }
  }
}
syntax: "proto3"
"""

# In dependency order: each file's imports come before it.
FILES: tuple[str, ...] = (
    _LOG_COLLECTOR_CONFIG,
    _LOGGING_CONFIG,
    _FILE_SYSTEM_STORAGE_PATH_SOURCE,
    _MODEL_SERVER_CONFIG,
)


def file_descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
    """Our copies of upstream's file descriptors, in dependency order."""
    return [text_format.Parse(text, descriptor_pb2.FileDescriptorProto()) for text in FILES]


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    for file in file_descriptors():
        pool.Add(file)
    return pool


def config_message(name: str) -> Any:
    """A new, empty ``tensorflow.serving.<name>`` message (ModelServerConfig, ModelConfig, ...)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{PACKAGE}.{name}"))()
