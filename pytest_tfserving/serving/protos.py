"""TF Serving config messages that the tensorflow-serving-api wheel does not ship, built at runtime.

``BatchingParameters`` (servables/tensorflow/session_bundle_config.proto) and ``MonitoringConfig``
(config/monitoring_config.proto) are read by ``tensorflow_model_server`` from text files. Building
their descriptors here, with upstream's package, field names and numbers, lets ``text_format`` write
and check those files with the real grammar instead of string templates. They live in a private
descriptor pool so they never clash with other definitions of ``tensorflow.serving.*`` in the process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from pytest_tfserving.serving.spec import DEFAULT_PROMETHEUS_PATH, BatchingSpec, SpecError

_PACKAGE = "tensorflow.serving"
_FD = descriptor_pb2.FieldDescriptorProto

# (name, number, type, type_name or "", repeated) exactly as upstream declares them.
_BATCHING_FIELDS: tuple[tuple[str, int, int, str, bool], ...] = (
    ("max_batch_size", 1, _FD.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("batch_timeout_micros", 2, _FD.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("max_enqueued_batches", 3, _FD.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("num_batch_threads", 4, _FD.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("thread_pool_name", 5, _FD.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
    ("allowed_batch_sizes", 6, _FD.TYPE_INT64, "", True),
    ("pad_variable_length_inputs", 7, _FD.TYPE_BOOL, "", False),
    ("enable_large_batch_splitting", 8, _FD.TYPE_MESSAGE, ".google.protobuf.BoolValue", False),
    ("max_execution_batch_size", 9, _FD.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
)
_PROMETHEUS_FIELDS: tuple[tuple[str, int, int, str, bool], ...] = (
    ("enable", 1, _FD.TYPE_BOOL, "", False),
    ("path", 2, _FD.TYPE_STRING, "", False),
)
_MONITORING_FIELDS: tuple[tuple[str, int, int, str, bool], ...] = (
    ("prometheus_config", 1, _FD.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False),
)
# Upstream fields BatchingSpec cannot express; a file that sets them is refused, not half-read.
_UNSUPPORTED_BATCHING = ("enable_large_batch_splitting", "max_execution_batch_size")


def _add_message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: tuple[tuple[str, int, int, str, bool], ...]
) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, field_type, type_name, repeated in fields:
        field = message.field.add(name=field_name, number=number, type=field_type)
        field.label = _FD.LABEL_REPEATED if repeated else _FD.LABEL_OPTIONAL
        if type_name:
            field.type_name = type_name


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    _add_message(batching, "BatchingParameters", _BATCHING_FIELDS)
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto", package=_PACKAGE, syntax="proto3"
    )
    _add_message(monitoring, "PrometheusConfig", _PROMETHEUS_FIELDS)
    _add_message(monitoring, "MonitoringConfig", _MONITORING_FIELDS)
    pool.Add(monitoring)
    return pool


def message_class(name: str) -> Any:
    """The runtime class of ``tensorflow.serving.<name>`` (BatchingParameters, MonitoringConfig, ...)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{_PACKAGE}.{name}"))


def _parse(text: str, name: str, what: str) -> Any:
    message = message_class(name)()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise SpecError(f"{what} is not a valid text {name} proto: {exc}") from exc
    return message


def batching_parameters_text(batching: BatchingSpec) -> str:
    """The ``--batching_parameters_file`` content; None fields are left out so server defaults apply."""
    batching.validate()
    message = message_class("BatchingParameters")()
    message.max_batch_size.value = batching.max_batch_size
    message.batch_timeout_micros.value = batching.batch_timeout_micros
    if batching.num_batch_threads is not None:
        message.num_batch_threads.value = batching.num_batch_threads
    if batching.max_enqueued_batches is not None:
        message.max_enqueued_batches.value = batching.max_enqueued_batches
    message.allowed_batch_sizes.extend(batching.allowed_batch_sizes)
    message.pad_variable_length_inputs = batching.pad_variable_length_inputs
    return str(text_format.MessageToString(message))


# tensorflow_model_server's values for fields a batching parameters file leaves out.
UPSTREAM_MAX_BATCH_SIZE = 1000
UPSTREAM_BATCH_TIMEOUT_MICROS = 0


def parse_batching_parameters(text: str) -> BatchingSpec:
    """Read a batching parameters file as tensorflow_model_server would.

    Fields left out take tensorflow_model_server's defaults: max_batch_size 1000, batch_timeout_micros
    0; max_enqueued_batches and num_batch_threads stay None (the server's 10 and one per CPU).
    ``thread_pool_name`` only names threads and is ignored.
    """
    message = _parse(text, "BatchingParameters", "batching parameters file")
    for name in _UNSUPPORTED_BATCHING:
        if message.HasField(name):
            raise SpecError(
                f"batching parameters file sets {name}, which pytest-tfserving does not model; "
                "remove it (BatchingSpec supports max_batch_size, batch_timeout_micros, num_batch_threads, "
                "max_enqueued_batches, allowed_batch_sizes, pad_variable_length_inputs)"
            )
    def wrapped(name: str) -> int | None:
        return int(getattr(message, name).value) if message.HasField(name) else None

    max_batch_size = wrapped("max_batch_size")
    timeout = wrapped("batch_timeout_micros")
    spec = BatchingSpec(
        max_batch_size=UPSTREAM_MAX_BATCH_SIZE if max_batch_size is None else max_batch_size,
        batch_timeout_micros=UPSTREAM_BATCH_TIMEOUT_MICROS if timeout is None else timeout,
        num_batch_threads=wrapped("num_batch_threads"),
        max_enqueued_batches=wrapped("max_enqueued_batches"),
        allowed_batch_sizes=tuple(int(size) for size in message.allowed_batch_sizes),
        pad_variable_length_inputs=bool(message.pad_variable_length_inputs),
    )
    spec.validate()
    return spec


def monitoring_config_text(prometheus_path: str | None) -> str:
    """The ``--monitoring_config_file`` content; None writes Prometheus explicitly disabled."""
    message = message_class("MonitoringConfig")()
    if prometheus_path is None:
        message.prometheus_config.enable = False
    else:
        if not prometheus_path.startswith("/"):
            raise SpecError(f"prometheus path {prometheus_path!r} must start with '/'")
        message.prometheus_config.enable = True
        message.prometheus_config.path = prometheus_path
    return str(text_format.MessageToString(message))


def parse_monitoring_config(text: str) -> str | None:
    """The Prometheus metrics path a monitoring config enables, or None when it is disabled.

    An enabled config without a path means upstream's default, ``/monitoring/prometheus/metrics``.
    """
    message = _parse(text, "MonitoringConfig", "monitoring config file")
    prometheus = message.prometheus_config
    if not prometheus.enable:
        return None
    path = str(prometheus.path) or DEFAULT_PROMETHEUS_PATH
    if not path.startswith("/"):
        raise SpecError(f"monitoring config file: prometheus path {path!r} must start with '/'")
    return path
