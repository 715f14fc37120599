"""Verdicts and records with chosen values (``detectable`` included), for the report tests.

A module with a unique name (not conftest), like tests/unit/gate/gate_factories.py.
"""

from __future__ import annotations

from typing import Any

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.report.records import TestRecord
from tests.unit.gate.gate_factories import FINGERPRINT, build_measurement, lognormal_p50s


def metric(verdict: str, detectable: float | None = 0.07, **kwargs: Any) -> MetricVerdict:
    fields: dict[str, Any] = dict(
        metric="p50_ms", verdict=verdict, baseline=2.0, current=2.6, change=0.3, ci_low=0.25, ci_high=0.35,
        p_value=0.001, tolerance=0.1, confidence=0.98, n_baseline=10, n_current=10,
        hardware_baseline="cpu=A", hardware_current="cpu=A", reason="worse beyond tolerance",
        detectable=detectable,
    )
    fields.update(kwargs)
    return MetricVerdict(**fields)


def relative(verdict: str, ratio: float | None = 0.5, detectable: float | None = 0.12,
             **kwargs: Any) -> RelativeVerdict:
    fields: dict[str, Any] = dict(
        metric="p50_ms", verdict=verdict, ratio=ratio, ci_low=None if ratio is None else ratio * 0.85,
        ci_high=None if ratio is None else ratio * 1.15, max_ratio=0.6, min_ratio=None, n_pairs=18,
        confidence=0.99, label_a="int8", label_b="fp32", reason="the confidence interval straddles the bound",
        detectable=detectable,
    )
    fields.update(kwargs)
    return RelativeVerdict(**fields)


MEASUREMENT = build_measurement(lognormal_p50s(0))
BASELINE = Baseline("x", MEASUREMENT, dict(FINGERPRINT), "2024-01-01T00:00:00+00:00")


def judged(nodeid: str, *verdicts: MetricVerdict | RelativeVerdict, **kwargs: Any) -> TestRecord:
    """A measurement judged against a baseline with the given verdicts."""
    return TestRecord(nodeid, MEASUREMENT, BASELINE, tuple(verdicts), **kwargs)
