"""Batching and monitoring files: our runtime messages against protoc-compiled upstream schemas."""

from __future__ import annotations

from types import ModuleType

import pytest
from google.protobuf import text_format

from pytest_tfserving.serving.protos import (
    batching_parameters_text,
    message_class,
    monitoring_config_text,
    parse_batching_parameters,
    parse_monitoring_config,
)
from pytest_tfserving.serving.spec import DEFAULT_PROMETHEUS_PATH, BatchingSpec, SpecError

SPECS = [
    BatchingSpec(),
    BatchingSpec(max_batch_size=64, batch_timeout_micros=0, allowed_batch_sizes=(8, 32, 64)),
    BatchingSpec(
        max_batch_size=128,
        batch_timeout_micros=5000,
        num_batch_threads=4,
        max_enqueued_batches=100,
        allowed_batch_sizes=(1, 128),
        pad_variable_length_inputs=True,
    ),
]


@pytest.mark.parametrize("spec", SPECS)
def test_batching_text_parses_with_real_grammar_and_round_trips(
    spec: BatchingSpec, real_protos: dict[str, ModuleType]
) -> None:
    text = batching_parameters_text(spec)
    real = text_format.Parse(text, real_protos["batching"].BatchingParameters())
    assert real.max_batch_size.value == spec.max_batch_size
    assert real.batch_timeout_micros.value == spec.batch_timeout_micros
    assert real.HasField("num_batch_threads") == (spec.num_batch_threads is not None)
    assert list(real.allowed_batch_sizes) == list(spec.allowed_batch_sizes)
    assert real.pad_variable_length_inputs == spec.pad_variable_length_inputs
    # Same bytes on the wire: field numbers and types match upstream, not only the names.
    ours = message_class("BatchingParameters")()
    ours.ParseFromString(real.SerializeToString())
    assert ours.SerializeToString(deterministic=True) == real.SerializeToString(deterministic=True)
    assert parse_batching_parameters(text) == spec


def test_batching_file_written_with_real_classes_parses(real_protos: dict[str, ModuleType]) -> None:
    real = real_protos["batching"].BatchingParameters()
    real.max_batch_size.value = 16
    real.num_batch_threads.value = 2
    real.thread_pool_name.value = "batch_threads"
    real.allowed_batch_sizes.extend([4, 16])
    spec = parse_batching_parameters(text_format.MessageToString(real))
    # batch_timeout_micros is left out of the file: the server default (0) applies, as upstream.
    assert spec == BatchingSpec(
        max_batch_size=16, batch_timeout_micros=0, num_batch_threads=2, allowed_batch_sizes=(4, 16)
    )


def test_batching_file_hand_written_like_the_docs() -> None:
    text = """
    max_batch_size { value: 128 }
    batch_timeout_micros { value: 0 }
    max_enqueued_batches { value: 1000000 }
    num_batch_threads { value: 8 }
    allowed_batch_sizes: 32
    allowed_batch_sizes: 128
    """
    assert parse_batching_parameters(text) == BatchingSpec(
        max_batch_size=128,
        batch_timeout_micros=0,
        max_enqueued_batches=1000000,
        num_batch_threads=8,
        allowed_batch_sizes=(32, 128),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size: 128", 'Expected "{"'),
        ("max_batch_size { value: 128 } inter_op_parallelism_threads: 8", "inter_op_parallelism_threads"),
        ("max_batch_size { value: 16 } allowed_batch_sizes: 8", "must end at max_batch_size=16"),
        ("max_batch_size { value: 16 } allowed_batch_sizes: 8 allowed_batch_sizes: 4", "strictly increasing"),
        ("enable_large_batch_splitting { value: true }", "enable_large_batch_splitting"),
    ],
)
def test_bad_batching_file_raises_spec_error(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_batching_parameters(text)


@pytest.mark.parametrize("path", ["/monitoring/prometheus/metrics", "/metrics", None])
def test_monitoring_text_parses_with_real_grammar(
    path: str | None, real_protos: dict[str, ModuleType]
) -> None:
    text = monitoring_config_text(path)
    real = text_format.Parse(text, real_protos["monitoring"].MonitoringConfig())
    assert real.prometheus_config.enable == (path is not None)
    assert real.prometheus_config.path == (path or "")
    ours = message_class("MonitoringConfig")()
    ours.ParseFromString(real.SerializeToString())
    assert text_format.MessageToString(ours) == text
    assert parse_monitoring_config(text) == path


def test_monitoring_written_with_real_classes_parses(real_protos: dict[str, ModuleType]) -> None:
    real = real_protos["monitoring"].MonitoringConfig()
    real.prometheus_config.enable = True
    assert parse_monitoring_config(text_format.MessageToString(real)) == DEFAULT_PROMETHEUS_PATH
    real.prometheus_config.path = "/custom"
    assert parse_monitoring_config(text_format.MessageToString(real)) == "/custom"
    assert parse_monitoring_config("") is None


def test_bad_monitoring_file_raises_spec_error() -> None:
    with pytest.raises(SpecError, match="monitoring config file"):
        parse_monitoring_config("prometheus_config { enabled: true }")
    with pytest.raises(SpecError, match="must start with '/'"):
        monitoring_config_text("metrics")
