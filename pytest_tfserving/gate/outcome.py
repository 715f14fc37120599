"""Pass or fail: the one place that turns verdicts and claims into a test's outcome."""

from __future__ import annotations

from pytest_tfserving.gate.judge import RelativeVerdict


def relative_failed(verdict: RelativeVerdict) -> bool:
    """A comparison fails when its bound is broken with confidence, or, when still inconclusive after
    the extra rounds, when the point estimate itself lies beyond the bound (the claim is not shown)."""
    if verdict.failed:
        return True
    if verdict.verdict != "inconclusive" or verdict.ratio is None:
        return False
    too_high = verdict.max_ratio is not None and verdict.ratio > verdict.max_ratio
    too_low = verdict.min_ratio is not None and verdict.ratio < verdict.min_ratio
    return too_high or too_low
