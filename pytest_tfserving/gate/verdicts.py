"""What the judges return: one verdict per metric or comparison, with the message a reviewer reads.

The judges (``judge.py`` against a stored baseline, ``relative.py`` in-run and beside the baseline's
deployment) share these dataclasses, their defaults and the few rules common to both. Whether a
verdict fails the test is not decided here but in ``outcome.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pytest_tfserving.load.results import HIGHER_IS_BETTER, LOWER_IS_BETTER

Verdict = Literal["pass", "regression", "improvement", "inconclusive", "incomparable"]
RelativeOutcome = Literal["pass", "fail", "inconclusive"]

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_WINDOWS = 5
# Recorded runs a stored baseline needs before the judge calls a regression (or improvement) against
# it: with fewer, the drift between sessions on this runner is not known. Measured by
# benchmarks/gate_calibration.py: unchanged PRs of 10 tests failed 33-61 % of the time against
# one-run baselines, 3.5-6.2 % against three runs of one sitting, 0.8 % against five.
DEFAULT_MIN_RUNS = 5


def history_decides(recorded_runs: int, min_runs: int = DEFAULT_MIN_RUNS) -> bool:
    """Whether a baseline stands for its recorded runs (their geometric mean and spread) rather than
    its latest run's windows: the one rule for the judge and for the figures reports print."""
    return recorded_runs >= max(min_runs, 2)
# The run-to-run spread the judge assumes at least (sd of log run medians). A history recorded in one
# sitting sees only that sitting's drift: here fp32 ResNet50's runs had sd 0.03 on one day and read
# 13-25 % slower a week later (worst log 0.222), which failed an unchanged `make perf`. 0.06 is the
# smallest whole percent under which none of those runs is significant against 3 to 5 recorded runs
# (docs/GATE.md).
DEFAULT_RUN_DRIFT = 0.06
# A stored baseline whose speed probe differs from this run's by more than this factor, either way,
# is incomparable (fingerprint.speed_mismatch_reason).
DEFAULT_SPEED_MISMATCH = 1.4
PairedMethod = Literal["signed_rank", "student_t"]
DEFAULT_PAIRED_METHOD: PairedMethod = "signed_rank"  # chosen by benchmarks/gate_quality.py analyze-ab
# Two server processes of one deployment differ by a persistent offset that pairing cannot remove
# (docs/GATE.md, 2026-12-02: sd of A/A session means 1.51 % at concurrency 1 with alternating
# requests, window noise alone 0.48 %; 4.2 % at concurrency 4 with interleaved windows, 2.4 % from
# windows). The judges take the offset part as known: sqrt(1.51^2 - 0.48^2) ~ 1.4 % and
# sqrt(4.2^2 - 2.4^2) ~ 3.4 %, rounded up.
DEFAULT_PROCESS_OFFSET = 0.015  # alternating requests (one in flight)
DEFAULT_INTERLEAVED_OFFSET = 0.035  # interleaved windows (perf.compare, --ab-baseline at concurrency > 1)


def lower_is_better(metric: str) -> bool:
    """The direction of ``metric``; an unknown metric is an error naming the known ones."""
    if metric in LOWER_IS_BETTER:
        return True
    if metric in HIGHER_IS_BETTER:
        return False
    known = ", ".join(sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER))
    raise ValueError(f"unknown metric {metric!r}: the judge knows {known}")


def check_alpha_and_tolerance(alpha: float, tolerance: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r} must be in (0, 0.5), e.g. 0.01")
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} must be >= 0, e.g. 0.10 for 10%")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def confidence_text(confidence: float) -> str:
    """98% or 99.97%: enough decimals that a level near 1 does not round to 100%."""
    if not 0 < confidence < 1:
        return f"{confidence:.0%}"
    decimals = max(0, math.ceil(-math.log10(1 - confidence)) - 2)
    return f"{confidence * 100:.{decimals}f}%"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{'+' if value > 0 else ''}{value * 100:.1f}%" if math.isfinite(value) else ("+inf" if value > 0
                                                                                        else "-inf")


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict. ``baseline``/``current`` are medians of window values; ``change`` and the
    CI are relative (``+0.12`` = 12% higher than the baseline)."""

    metric: str
    verdict: Verdict
    baseline: float | None
    current: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # one-sided, in the direction of the observed change
    tolerance: float
    confidence: float  # of the central CI, 1 - 2 * alpha
    n_baseline: int
    n_current: int
    hardware_baseline: str
    hardware_current: str
    reason: str
    more_windows_help: bool = False
    baseline_runs: int = 0  # > 0: judged against this many recorded runs (run-to-run spread)
    paired: bool = False  # judged against the baseline's deployment served beside it (A/B windows)
    # The smallest true change (relative, in the worse direction) this run would have called a
    # regression with 95 % power, given its own noise, the tolerance and alpha; None: not estimable.
    detectable: float | None = None


    def message(self) -> str:
        head = f"{self.metric}: {self.verdict}"
        if self.paired:
            base = f"baseline's deployment served beside it, median of {self.n_baseline} paired windows"
        elif self.baseline_runs:
            base = f"geometric mean of {self.baseline_runs} recorded runs"
        else:
            base = f"median of {self.n_baseline} windows"
        values = (f"baseline {_fmt(self.baseline)} ({base}) -> current "
                  f"{_fmt(self.current)} (median of {self.n_current} windows)")
        stats = f"change {_pct(self.change)} (tolerance {self.tolerance:.0%})"
        if self.ci_low is not None and self.ci_high is not None:
            interval = ("prediction interval" if self.baseline_runs
                        else "CI of the paired ratio" if self.paired else "CI")
            level = confidence_text(self.confidence)
            stats += f", {level} {interval} {_pct(self.ci_low)}..{_pct(self.ci_high)}"
        if self.p_value is not None:
            stats += f", p={self.p_value:.2g}"
        if self.detectable is not None:
            stats += f"; could detect >= {_pct(self.detectable).lstrip('+')}"
        if self.hardware_baseline == self.hardware_current:
            hardware = f"both measured on {self.hardware_current}"
        else:
            hardware = f"baseline measured on {self.hardware_baseline}, current on {self.hardware_current}"
        return f"{head} - {self.reason}; {values}; {stats}; {hardware}"


def unjudged(
    metric: str,
    *,
    tolerance: float,
    alpha: float,
    n_baseline: int,
    n_current: int,
    hardware_baseline: str,
    hardware_current: str,
    paired: bool = False,
) -> MetricVerdict:
    """The verdict before any evidence: inconclusive, no values yet; the judges fill in the rest."""
    return MetricVerdict(
        metric=metric, verdict="inconclusive", baseline=None, current=None, change=None, ci_low=None,
        ci_high=None, p_value=None, tolerance=tolerance, confidence=1 - 2 * alpha, n_baseline=n_baseline,
        n_current=n_current, hardware_baseline=hardware_baseline, hardware_current=hardware_current,
        reason="", paired=paired,
    )


@dataclass(frozen=True)
class RelativeVerdict:
    """An in-run comparison of ``a`` against ``b`` (e.g. int8 vs fp32) on paired, interleaved windows."""

    metric: str
    verdict: RelativeOutcome
    ratio: float | None  # geometric mean of paired window ratios a/b
    ci_low: float | None
    ci_high: float | None
    max_ratio: float | None
    min_ratio: float | None
    n_pairs: int
    confidence: float  # each bound is one-sided at this level
    label_a: str
    label_b: str
    reason: str
    more_windows_help: bool = False
    # How far (relative) the true ratio must lie beyond the bound, on either side, for this run to
    # settle the claim with 95 % power; None: not estimable.
    detectable: float | None = None


    def message(self) -> str:
        bound = " and ".join(
            part for part in (
                None if self.max_ratio is None else f"<= {self.max_ratio:g}x",
                None if self.min_ratio is None else f">= {self.min_ratio:g}x",
            ) if part
        )
        ratio = "-" if self.ratio is None else f"{self.ratio:.3f}x"
        level = confidence_text(self.confidence)
        ci = ("" if self.ci_low is None or self.ci_high is None
              else f", {level} one-sided bounds {self.ci_low:.3f}x..{self.ci_high:.3f}x")
        settles = ("" if self.detectable is None
                   else f"; settles a ratio {self.detectable:.1%} or more beyond the bound")
        return (f"{self.metric} {self.label_a}/{self.label_b}: {self.verdict} - {self.reason}; "
                f"required {bound}; measured {ratio} over {self.n_pairs} window pairs{ci}{settles}")


def needs_more_windows(verdict: MetricVerdict | RelativeVerdict) -> bool:
    """True when measuring more windows could settle an inconclusive verdict (not when data is missing)."""
    return verdict.verdict == "inconclusive" and verdict.more_windows_help
