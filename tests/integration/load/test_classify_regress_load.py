"""Classify and Regress loads against the embedded server with a tiny tf.Example model: requests reach
the method (its own request_latency series), succeed, and a wrong signature is counted as errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_tfserving.load import LoadConfig, PayloadOptions, StabilityRule, measure
from pytest_tfserving.metrics.prometheus import PrometheusScraper
from pytest_tfserving.perf.loads import server_latency_source
from pytest_tfserving.serving.metric_labels import request_latency_labels
from tests.integration.load.load_servers import METRICS_PATH, MODEL, Server, embedded_server

FAST: dict[str, Any] = {"warmup_s": 0.3, "window_s": 0.5, "rule": StabilityRule(min_windows=2, max_windows=2)}


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Model "tiny" is TF1 half_plus_two: classify_x_to_y, classify_with_labels, regress_x_to_y."""
    from tests.integration.embedded.example_models import export_half_plus

    root = tmp_path_factory.mktemp("half_plus")
    built = export_half_plus(root / "savedmodel")
    shutil.copytree(built, root / "model" / "1")
    monitoring = root / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    flag = f"--monitoring_config_file={monitoring}"
    with embedded_server(root / "model", root / "server.log", flag) as server:
        yield server


def _examples(*xs: float) -> list[bytes]:
    from tensorflow.core.example import example_pb2

    out = []
    for x in xs:
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.append(x)
        out.append(example.SerializeToString())
    return out


PAYLOADS = PayloadOptions(examples=[_examples(1.0), _examples(2.0, 3.0), _examples(0.5)])


def _scraper(server: Server, protocol: str, method: str) -> PrometheusScraper:
    labels = request_latency_labels(MODEL, "rest" if protocol == "rest" else "grpc", method)  # type: ignore[arg-type]
    return PrometheusScraper(server.rest_url + METRICS_PATH, labels=labels)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize(
    ("method", "signature"), [("classify", "classify_with_labels"), ("regress", "regress_x_to_y")]
)
def test_examples_load_reaches_the_method_and_succeeds(
    example_server: Server, protocol: str, method: str, signature: str
) -> None:
    own, predict = _scraper(example_server, protocol, method), _scraper(example_server, protocol, "predict")
    before_own, before_predict = own.scrape().count, predict.scrape().count
    endpoints = SimpleNamespace(prometheus_url=example_server.rest_url + METRICS_PATH)
    m = measure(
        LoadConfig(
            example_server.target(protocol),
            MODEL,
            protocol=protocol,
            method=method,
            signature_name=signature,
            payloads=PAYLOADS,
            concurrency=2,
            server_latency=server_latency_source(
                SimpleNamespace(endpoints=endpoints), MODEL, protocol, method  # type: ignore[arg-type]
            ),
        ),
        **FAST,
    )
    assert m.count > 5 and m.errors == 0 and m.errors_by_status == {}
    assert own.scrape().count - before_own >= m.count  # warmup requests are counted there too
    assert predict.scrape().count == before_predict
    assert m.server_p50_ms is not None and m.server_p50_ms > 0


@pytest.mark.parametrize(
    ("protocol", "method", "status"),
    [
        ("grpc", "classify", "INVALID_ARGUMENT"),
        ("rest", "classify", "400"),
        ("grpc", "regress", "INVALID_ARGUMENT"),
    ],
)
def test_a_wrong_signature_is_counted_as_errors(
    example_server: Server, protocol: str, method: str, status: str
) -> None:
    m = measure(
        LoadConfig(
            example_server.target(protocol),
            MODEL,
            protocol=protocol,
            method=method,
            signature_name="serving_default",  # a predict signature: x (float) -> y
            payloads=PAYLOADS,
        ),
        **FAST,
    )
    assert m.count > 0 and m.errors == m.count and m.errors_by_status == {status: m.count}


def test_a_signature_of_the_other_kind_is_an_error_too(example_server: Server) -> None:
    m = measure(
        LoadConfig(
            example_server.grpc_target,
            MODEL,
            method="regress",
            signature_name="classify_with_labels",  # two outputs: "Expected one output Tensor."
            payloads=PAYLOADS,
        ),
        **FAST,
    )
    assert m.count > 0 and m.errors == m.count
