"""merge_measurements and measure_until_settled (more windows for an inconclusive verdict), and the
comparison failure rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pytest_tfserving.gate.judge import RelativeVerdict
from pytest_tfserving.gate.outcome import relative_fails
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.handle import merge_measurements
from pytest_tfserving.perf.settle import Limits, Sides, measure_until_settled


def _measurement(latencies_ms: np.ndarray, duration_s: float, errors: int, cpu: float) -> Measurement:
    hist = Histogram()
    hist.record_many(latencies_ms)
    windows = tuple(
        WindowSummary(
            start_s=float(i),
            duration_s=1.0,
            count=10,
            errors=0,
            p50_ms=float(np.median(chunk)),
            p90_ms=0,
            p95_ms=0,
            p99_ms=0,
            max_ms=float(chunk.max()),
            mean_ms=float(chunk.mean()),
            rps=10.0,
            cpu_percent=cpu,
            rss_mb=100.0,
        )
        for i, chunk in enumerate(np.array_split(latencies_ms, int(duration_s)))
    )
    count = latencies_ms.size + errors
    return Measurement(
        protocol="grpc",
        mode="closed",
        concurrency=1,
        target_rps=None,
        duration_s=duration_s,
        count=count,
        errors=errors,
        errors_by_status={"UNAVAILABLE": errors} if errors else {},
        p50_ms=hist.percentile(50),
        p90_ms=hist.percentile(90),
        p95_ms=hist.percentile(95),
        p99_ms=hist.percentile(99),
        max_ms=float(latencies_ms.max()),
        mean_ms=hist.mean_ms,
        rps=latencies_ms.size / duration_s,
        windows=windows,
        stable=True,
        cpu_percent=cpu,
        rss_mb=100.0,
        latency_histogram=hist.to_dict(),
    )


def test_merged_measurement_is_the_union_of_both_runs() -> None:
    rng = np.random.default_rng(0)
    fast, slow = rng.uniform(1, 2, 400), rng.uniform(9, 10, 400)
    merged = merge_measurements(_measurement(fast, 4, 1, 50.0), _measurement(slow, 4, 2, 70.0))
    assert merged.count == 803 and merged.errors == 3
    assert merged.errors_by_status == {"UNAVAILABLE": 3}
    assert merged.duration_s == 8
    assert len(merged.windows) == 8
    assert [w.start_s for w in merged.windows] == [0, 1, 2, 3, 4, 5, 6, 7]
    union = np.concatenate([fast, slow])
    assert abs(merged.p90_ms - np.percentile(union, 90)) / np.percentile(union, 90) < 0.02
    assert 1 < merged.p50_ms < 10
    assert merged.cpu_percent == 60.0
    assert merged.max_ms == slow.max()


def _relative(verdict: str, ratio: float) -> RelativeVerdict:
    return RelativeVerdict(
        metric="p50_ms",
        verdict=verdict,  # type: ignore[arg-type]
        ratio=ratio,
        ci_low=ratio * 0.8,
        ci_high=ratio * 1.2,
        max_ratio=0.6,
        min_ratio=None,
        n_pairs=6,
        confidence=0.99,
        label_a="int8",
        label_b="fp32",
        reason="",
    )


def test_an_unsettled_comparison_does_not_fail_on_its_point_estimate() -> None:
    assert relative_fails(_relative("fail", 0.9))
    assert not relative_fails(_relative("inconclusive", 0.65))
    assert not relative_fails(_relative("inconclusive", 0.55))
    assert not relative_fails(_relative("pass", 0.3))


def _loop(verdicts: list[str], limits: Limits) -> tuple[Sides, list[tuple[int, int, float]], int]:
    """Drive the loop with a judge that answers ``verdicts`` in turn; returns the merged sides, each
    run's (min_windows, max_windows, warm-up) and how many verdicts were asked for. Each run is
    stable at its minimum number of windows."""
    runs: list[tuple[int, int, float]] = []
    answers = iter(verdicts)
    asked = 0

    def measure_more(rule: StabilityRule, warmup_s: float) -> Sides:
        runs.append((rule.min_windows, rule.max_windows, warmup_s))
        windows = rule.min_windows  # as if stable as soon as allowed
        return (_measurement(np.full(10 * windows, 2.0), windows, 0, 50.0),) * 2

    def judge(sides: Sides) -> list[RelativeVerdict]:
        nonlocal asked
        asked += 1
        verdict = dataclasses.replace(_relative(next(answers), 0.65), more_windows_help=True)
        return [verdict]

    sides, _ = measure_until_settled(measure_more, judge, limits, warmup_s=2.0)
    return sides, runs, asked


def test_an_inconclusive_verdict_is_measured_once_more_up_to_the_maximum() -> None:
    sides, runs, asked = _loop(["inconclusive"] * 10, Limits.within(StabilityRule(5, 12)))
    assert runs == [(5, 12, 2.0), (7, 7, 0.5)]  # two looks: 5, then 12
    assert asked == 2 and all(len(m.windows) == 12 for m in sides)


def test_a_settled_verdict_stops_the_loop() -> None:
    _, runs, asked = _loop(["pass"], Limits.within(StabilityRule(8, 20)))
    assert runs == [(8, 20, 2.0)] and asked == 1


def test_rounds_are_extended_to_the_maximum_and_not_beyond() -> None:
    sides, runs, _ = _loop(["inconclusive"] * 10, Limits.in_rounds(6, 10))
    assert runs == [(6, 6, 2.0), (4, 4, 0.5)] and len(sides[0].windows) == 10
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        Limits.in_rounds(0, 3)
