"""The study table from records (no server): rows, changes, in-run verdicts, the study's figures.

Not a perf test, so ``make perf`` (``-m perf``) skips it; run with ``pytest perf_suites -m "not perf"``.
"""

from __future__ import annotations

import numpy as np

from perf_suites.cached_load import expected_hits
from perf_suites.study_table import study_table
from pytest_tfserving.gate.relative import judge_relative
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.report.records import TestRecord


def measurement(p50: float, rps: float, concurrency: int = 1, **extra: float) -> Measurement:
    windows = tuple(WindowSummary(start_s=float(k), duration_s=1.0, count=10, errors=0,
                                  p50_ms=p50 * (1 + k / 100), p90_ms=p50, p95_ms=p50, p99_ms=p50,
                                  max_ms=p50, mean_ms=p50, rps=rps)
                    for k in range(6))
    return Measurement(protocol="grpc", mode="closed", concurrency=concurrency, target_rps=None,
                       duration_s=6.0, count=60, errors=0, errors_by_status={}, p50_ms=p50, p90_ms=p50,
                       p95_ms=p50, p99_ms=2 * p50, max_ms=2 * p50, mean_ms=p50, rps=rps, windows=windows,
                       stable=True, cpu_percent=90.0, extra=dict(extra))


def test_rows_changes_and_study_figures() -> None:
    fp32, int8 = measurement(200.0, 5.0), measurement(100.0, 10.0)
    node = "perf_suites/test_resnet50.py::test_quantized_latency[int8]"
    records = [
        TestRecord("perf_suites/test_resnet50.py::test_fp32_latency@fp32-c1", fp32),
        TestRecord("perf_suites/test_resnet50.py::test_fp32_latency@fp32-single",
                   measurement(190.0, 5.2, single_request=1.0)),
        TestRecord("perf_suites/test_resnet50.py::test_fp32_throughput@fp32-c4", measurement(800.0, 5.0, 4)),
        TestRecord(f"{node}@int8-c1", int8),
        TestRecord(node, verdicts=(judge_relative(int8, fp32, "p50_ms", max_ratio=1.0,
                                                  label_a="int8", label_b="fp32"),)),
        TestRecord("perf_suites/test_resnet50.py::test_redis_cache@cache-r50",
                   measurement(2.0, 50.0, cache_hit_ratio=0.5, repeat_share=0.5, cache_hit_mean_ms=1.0,
                               cache_miss_mean_ms=120.0)),
    ]
    table = study_table(records, hardware="test box")
    assert table is not None
    lines = table.splitlines()
    baseline = next(line for line in lines if line.startswith("| baseline fp32") and "c=1" in line)
    assert "200.0" in baseline and "156 ms" in baseline and "reference" in baseline
    single = next(line for line in lines if "pytest-benchmark" in line)
    assert single.startswith("| baseline fp32") and "190.0" in single and "| - |" in single
    assert "p50 -5 %" not in single  # measured one after the other, not interleaved: no change shown
    throughput = next(line for line in lines if line.startswith("| baseline fp32") and "c=4" in line)
    assert "64 req/s" in throughput
    int8_row = next(line for line in lines if line.startswith("| 1. INT8 full"))
    assert "p50 -50 %" in int8_row and "int8/fp32 0.5" in int8_row
    assert "pass" in int8_row and "89 ms" in int8_row
    cache_row = next(line for line in lines if line.startswith("| 3. Redis cache"))
    assert "hit ratio 0.50" in cache_row and "hit 1.00 ms vs miss 120.00 ms" in cache_row
    assert not any("threads tuned" in line for line in lines), "unmeasured steps get no row"


def test_no_study_measurements_no_section() -> None:
    assert study_table([TestRecord("tests/x.py::test_other", measurement(1.0, 1.0))]) is None


def test_expected_hits_counts_repeats_in_send_order() -> None:
    order = np.array([0, 1, 0, 2, 1, 3], dtype=np.int32)
    assert expected_hits(order, 6) == 2
    assert expected_hits(order, 8) == 4  # the order starts over: 0 and 1 come back as hits
