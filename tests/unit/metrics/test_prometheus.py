"""Prometheus text parsing, histogram selection, deltas and histogram_quantile-style estimates."""

from __future__ import annotations

import math

import pytest

from pytest_tfserving.metrics.prometheus import (
    REQUEST_COUNT,
    REQUEST_LATENCY,
    ExpositionError,
    HistogramState,
    PrometheusScraper,
    counter_value,
    parse_text,
    select_histogram,
)


def tf_serving_page(grpc: list[int], rest: list[int], grpc_sum: float, rest_sum: float) -> str:
    """A page as TF Serving's exporter prints it: TYPE lines, no HELP, labels in declaration order."""
    bounds = ["10", "18", "32.4", "58.32", "104.976", "188.957", "340.122", "612.22", "1101.99", "+Inf"]
    lines = [
        f"# TYPE {REQUEST_COUNT} counter",
        f'{REQUEST_COUNT}{{model_name="m",status="OK"}} {sum(grpc) + sum(rest)}',
        f'{REQUEST_COUNT}{{model_name="m",status="INVALID_ARGUMENT"}} 2',
        f"# TYPE {REQUEST_LATENCY} histogram",
    ]
    for entrypoint, counts, total in (("GRPC", grpc, grpc_sum), ("REST", rest, rest_sum)):
        labels = f'model_name="m",API="predict",entrypoint="{entrypoint}"'
        running = 0
        for le, n in zip(bounds, counts, strict=True):
            running += n
            lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{le}"}} {running}')
        lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {total:g}")
        lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {running}")
    lines.append(":tensorflow:core:graph_runs{} 17")
    return "\n".join(lines) + "\n"


GRPC = [0, 0, 0, 0, 2, 6, 2, 0, 0, 0]  # 10 requests, between 58.32 and 340.122 us
REST = [0, 0, 0, 0, 0, 0, 1, 3, 0, 1]  # 5 requests, one above the last finite bound
PAGE = tf_serving_page(GRPC, REST, grpc_sum=1750.5, rest_sum=1.23457e06)


def test_parses_colon_names_labels_and_empty_braces() -> None:
    samples = parse_text(PAGE)
    first = samples[0]
    assert first.name == REQUEST_COUNT
    assert dict(first.labels) == {"model_name": "m", "status": "OK"}
    assert first.value == 15.0
    assert samples[-1].name == ":tensorflow:core:graph_runs" and samples[-1].labels == ()
    assert counter_value(samples, REQUEST_COUNT, {"status": "OK"}) == 15.0
    assert counter_value(samples, REQUEST_COUNT) == 17.0


def test_label_escapes_timestamps_and_special_values() -> None:
    text = (
        'x{path="C:\\\\dir",msg="say \\"hi\\"\\n", le="+Inf"} +Inf 1700000000000\n'
        "y NaN\n"
        "z -Inf\n"
        "w{a=\"1\",} 1.5e+06\n"
    )
    x, y, z, w = parse_text(text)
    assert dict(x.labels) == {"path": "C:\\dir", "msg": 'say "hi"\n', "le": "+Inf"}
    assert math.isinf(x.value)
    assert math.isnan(y.value)
    assert z.value == -math.inf
    assert w.value == 1.5e6 and dict(w.labels) == {"a": "1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('x{a="1" 3\n', "expected , or }"),
        ("x{a=1} 3\n", 'expected ="'),
        ("x 3 4 5\n", "expected a value"),
        ("x three\n", "bad sample value 'three'"),
        ("{a=\"1\"} 3\n", "no metric name"),
        ('x{a="1} 3\n', "unterminated value"),
    ],
)
def test_malformed_lines_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ExpositionError, match=rf"line 1: .*{message[:12]}"):
        parse_text(text)


def test_select_one_series_by_labels() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"model_name": "m", "entrypoint": "GRPC"})
    assert state.series == 1
    assert state.count == 10 and state.sum == 1750.5
    assert state.bounds[-1] == math.inf and len(state.bounds) == 10
    assert state.cumulative[-1] == 10


def test_select_sums_matching_series_like_sum_by_le() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"API": "predict"})
    assert state.series == 2
    assert state.count == 15
    assert state.sum == pytest.approx(1750.5 + 1.23457e06)


def test_absent_series_is_empty_not_an_error() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"model_name": "other"})
    assert state == HistogramState.empty()
    assert math.isnan(state.quantile(0.5)) and math.isnan(state.mean())


def test_quantile_interpolates_like_histogram_quantile() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"entrypoint": "GRPC"})
    # cumulative: 2 at 104.976, 8 at 188.957, 10 at 340.122
    # p50: rank 5 falls in (104.976, 188.957] with 3 of its 6 -> midpoint
    assert state.quantile(0.5) == pytest.approx(104.976 + (188.957 - 104.976) * 3 / 6)
    # p10: rank 1 in (58.32, 104.976], 1 of 2
    assert state.quantile(0.1) == pytest.approx(58.32 + (104.976 - 58.32) * 0.5)
    # p100: rank 10 reached at 340.122 (the (188.957, 340.122] bucket, fully) -> its upper bound
    assert state.quantile(1.0) == pytest.approx(340.122)
    assert state.quantile(0.0) == pytest.approx(58.32)  # lower edge of the first non-empty bucket
    assert state.quantile_ms(0.5) == pytest.approx(state.quantile(0.5) / 1000)
    assert state.mean() == pytest.approx(175.05) and state.mean_ms() == pytest.approx(0.17505)


def test_quantile_in_inf_bucket_returns_last_finite_bound() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"entrypoint": "REST"})
    assert state.quantile(0.99) == pytest.approx(1101.99)


def test_quantile_rejects_out_of_range_q() -> None:
    state = select_histogram(parse_text(PAGE), REQUEST_LATENCY)
    with pytest.raises(ValueError, match=r"\[0, 1\], got 1.5"):
        state.quantile(1.5)


def test_delta_between_two_scrapes() -> None:
    before = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"entrypoint": "GRPC"})
    more = [0, 0, 0, 0, 0, 0, 0, 4, 0, 0]  # 4 new requests in (340.122, 612.22]
    later_page = tf_serving_page([a + b for a, b in zip(GRPC, more, strict=True)], REST,
                                 grpc_sum=1750.5 + 2000.0, rest_sum=1.23457e06)
    after = select_histogram(parse_text(later_page), REQUEST_LATENCY, {"entrypoint": "GRPC"})
    window = after.delta(before)
    assert window.count == 4
    assert window.sum == pytest.approx(2000.0)
    assert window.mean() == pytest.approx(500.0)
    assert window.quantile(0.5) == pytest.approx(340.122 + (612.22 - 340.122) * 0.5)
    assert before.delta(before).count == 0 and math.isnan(before.delta(before).quantile(0.5))


def test_delta_from_empty_and_after_restart() -> None:
    now = select_histogram(parse_text(PAGE), REQUEST_LATENCY, {"entrypoint": "GRPC"})
    assert now.delta(HistogramState.empty()) == now
    restarted = select_histogram(parse_text(tf_serving_page([0, 0, 0, 0, 1, 0, 0, 0, 0, 0], REST, 80.0, 1.0)),
                                 REQUEST_LATENCY, {"entrypoint": "GRPC"})
    assert restarted.delta(now).count == 1  # counters went down: post-restart counts are the increase


def test_delta_refuses_different_buckets() -> None:
    a = HistogramState((1.0, math.inf), (1.0, 1.0), 0.5, 1.0)
    b = HistogramState((2.0, math.inf), (1.0, 1.0), 0.5, 1.0)
    with pytest.raises(ValueError, match="bucket boundaries differ"):
        b.delta(a)


def test_histogram_without_inf_bucket_is_rejected() -> None:
    text = 'h_bucket{le="1"} 1\nh_sum 0.5\nh_count 1\n'
    with pytest.raises(ExpositionError, match=r"no le=\"\+Inf\" bucket"):
        select_histogram(parse_text(text), "h")


def test_scraper_rejects_non_http_url() -> None:
    with pytest.raises(ValueError, match="http://"):
        PrometheusScraper("127.0.0.1:8501/monitoring/prometheus/metrics")
