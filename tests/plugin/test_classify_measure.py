"""perf.measure(method="classify"/"regress") through the plugin: a tf.Example model served by the
fixtures is loaded with Classify and Regress, its server-side latency read from that method's series."""

from __future__ import annotations

import grpc  # noqa: F401 - imported before the inline runs (see tests/plugin/conftest.py)
import pytest

from tests.plugin.conftest import FAST_ARGS

CLASSIFY_TESTS = """
import pytest
from tensorflow.core.example import example_pb2

from pytest_tfserving import PayloadOptions, ServerSpec
from tests.integration.embedded.example_models import export_half_plus


def _example(x):
    example = example_pb2.Example()
    example.features.feature["x"].float_list.value.append(x)
    return example.SerializeToString()


@pytest.fixture(scope="session")
def half_plus(tmp_path_factory, tfserving_server_factory):
    base = tmp_path_factory.mktemp("hp")
    export_half_plus(base / "1")
    return tfserving_server_factory(ServerSpec.single("hp", base))


PAYLOADS = PayloadOptions(examples=[[_example(1.0)], [_example(2.0), _example(3.0)]])


SIGNATURES = [("classify", "classify_with_labels"), ("regress", "regress_x_to_y")]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize(("method", "signature"), SIGNATURES)
def test_gate_a_tf_example_model(half_plus, perf, protocol, method, signature):
    m = perf.measure(half_plus, protocol=protocol, method=method, signature_name=signature, payloads=PAYLOADS,
                     concurrency=2)
    assert m.count > 0 and m.errors == 0
    assert m.server_p50_ms is not None and m.server_p50_ms > 0  # the method's own latency series


def test_a_wrong_signature_is_counted(half_plus, perf):
    m = perf.measure(half_plus, method="classify", signature_name="serving_default", payloads=PAYLOADS)
    assert m.count > 0 and m.errors == m.count
"""


def test_classify_and_regress_measured_through_the_fixtures(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_classify=CLASSIFY_TESTS)
    result = perf_project.runpytest(*FAST_ARGS, "-rA")
    result.assert_outcomes(passed=5)
