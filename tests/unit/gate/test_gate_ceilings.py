"""perf marker kwargs -> check objects; bad input fails at once with the valid keys."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tfserving.gate.ceilings import (
    CEILING_KEYS,
    DEFAULT_GATE,
    CeilingError,
    PerfChecks,
    check_ceilings,
    parse_perf_marker,
)
from tests.unit.gate.gate_factories import MakeMeasurement


def test_defaults() -> None:
    checks = parse_perf_marker({})
    assert checks == PerfChecks()
    assert checks.gate == DEFAULT_GATE and checks.tolerance_for("p50_ms") == 0.10


def test_parses_ceilings_tolerances_and_gate() -> None:
    checks = parse_perf_marker({"p99_ms": 50, "min_rps": 100.5, "tolerance": 0.05,
                                "tolerances": {"p99_ms": 0.2}, "gate": ["p50_ms", "p99_ms", "p50_ms"],
                                "duration": 30}, allowed_extra={"duration"})
    assert {(c.metric, c.bound, c.limit) for c in checks.ceilings} == {("p99_ms", "max", 50.0),
                                                                        ("rps", "min", 100.5)}
    assert checks.tolerance_for("p99_ms") == 0.2 and checks.tolerance_for("p50_ms") == 0.05
    assert checks.gate == ("p50_ms", "p99_ms")
    assert checks.extra == {"duration": 30}


def test_every_documented_ceiling_key_parses() -> None:
    checks = parse_perf_marker({key: 0.5 for key in CEILING_KEYS})
    assert len(checks.ceilings) == 13


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p99": 10}, "unknown argument 'p99'; valid: gate, max_cpu_percent"),
        ({"p99_ms": "10"}, "p99_ms='10' must be a number"),
        ({"p99_ms": True}, "must be a number"),
        ({"p99_ms": -1}, "non-negative finite"),
        ({"p99_ms": float("nan")}, "non-negative finite"),
        ({"max_error_rate": 5}, "at most 1"),
        ({"tolerance": 0}, "positive"),
        ({"tolerance": 10}, "at most 1"),
        ({"tolerances": {"p42_ms": 0.1}}, "unknown metric 'p42_ms'; valid metrics: cache_hit_ratio"),
        ({"tolerances": 0.1}, "must be a dict"),
        ({"gate": "p50_ms"}, "must be a tuple of metric names"),
        ({"gate": ("latency",)}, "gate names unknown metric 'latency'"),
    ],
)
def test_bad_input_names_the_fix(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(CeilingError, match=match):
        parse_perf_marker(kwargs)
    assert issubclass(CeilingError, ValueError)


def test_check_ceilings(make_measurement: MakeMeasurement) -> None:
    m = make_measurement([2.0] * 5, errors=10, extra={"cache_hit_ratio": 0.4})  # p99 = 4 ms, rps = 500
    checks = parse_perf_marker({"p99_ms": 3.0, "p50_ms": 5, "min_rps": 600, "max_error_rate": 0.001,
                                "min_cache_hit_ratio": 0.5, "max_rss_mb": 1000})
    failures = check_ceilings(checks, m)
    assert {f.key for f in failures} == {"p99_ms", "min_rps", "max_error_rate", "min_cache_hit_ratio"}
    by_key = {f.key: f for f in failures}
    assert by_key["p99_ms"].message() == "p99_ms 4 > p99_ms=3"
    assert by_key["min_rps"].message() == "rps 500 < min_rps=600"
    assert check_ceilings(parse_perf_marker({"p99_ms": 4.0}), m) == []  # at the limit passes


def test_unmeasured_metric_fails_the_ceiling(make_measurement: MakeMeasurement) -> None:
    m = make_measurement([2.0] * 5)  # no GPU figures
    [failure] = check_ceilings(parse_perf_marker({"max_gpu_memory_mb": 100}), m)
    assert failure.actual is None
    assert "gpu_memory_mb was not measured" in failure.message()
