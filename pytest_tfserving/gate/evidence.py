"""The one rule every judge ends in: is the change beyond the tolerance, with confidence?

Each judge reduces its data to an ``Evidence``: an estimate of the change on the log scale,
``log(current / baseline)``, its standard error (every noise source the judge knows of: windows,
run-to-run drift, the offset between two server processes) and the degrees of freedom of that
error (``math.inf`` when the error is taken as known). ``settle`` turns it into a verdict:

- **regression** only when the one-sided ``1 - alpha`` bound lies beyond the tolerance: a true
  change no larger than the tolerance is called a regression at most ``alpha`` of the time;
- **improvement** symmetrically on the better side;
- **inconclusive** when the estimate is beyond the tolerance on the worse side but the bound is not;
- **pass** otherwise (within the tolerance, or better without confidence).

``detectable`` is the smallest true change this evidence would call a regression with 95 % power:
``tolerance + (q(1 - alpha) + q(0.95)) * scale`` on the log scale. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pytest_tfserving.gate.verdicts import MetricVerdict, lower_is_better

POWER = 0.95  # the power at which ``detectable`` is stated


def quantile(level: float, df: float) -> float:
    """Student-t quantile (``df`` inf: the normal one)."""
    from scipy.stats import norm, t

    return float(norm.ppf(level)) if math.isinf(df) else float(t.ppf(level, df))


def upper_tail(x: float, df: float) -> float:
    from scipy.stats import norm, t

    return float(norm.sf(x)) if math.isinf(df) else float(t.sf(x, df))


@dataclass(frozen=True)
class Evidence:
    """``estimate`` of log(current / baseline) with standard error ``scale`` on ``df`` degrees of freedom."""

    estimate: float
    scale: float
    df: float = math.inf

    def half_width(self, alpha: float) -> float:
        """Distance from the estimate to its one-sided ``1 - alpha`` bound."""
        return quantile(1 - alpha, self.df) * self.scale

    def detectable_log(self, alpha: float, threshold: float) -> float:
        """The true log change beyond ``threshold`` found with ``POWER`` by a test at ``alpha``."""
        return threshold + (quantile(1 - alpha, self.df) + quantile(POWER, self.df)) * self.scale


def welch_df(known: float, estimated: float, n: int) -> float:
    """Degrees of freedom of ``sqrt(known^2 + estimated^2)`` when only ``estimated`` (from ``n``
    values) is estimated (Welch-Satterthwaite); inf when it is all known."""
    if estimated <= 0 or n < 2:
        return math.inf
    total = known**2 + estimated**2
    return total**2 / (estimated**4 / (n - 1))


def worse_sign(metric: str) -> int:
    """+1 when a larger value is worse (latency), -1 when a smaller one is (throughput)."""
    return 1 if lower_is_better(metric) else -1


def thresholds(tolerance: float, sign: int) -> tuple[float, float]:
    """(worse, better) thresholds on the badness scale ``sign * log(current / baseline)``.

    A tolerance of 10 % means: latency up by more than 10 % (log 1.1) or throughput down by more
    than 10 % (-log 0.9) is worse; latency down by more than 10 % or throughput up by more than
    10 % is better.
    """
    up = math.log1p(tolerance)
    down = -math.log1p(-tolerance) if tolerance < 1 else math.inf
    return (up, down) if sign > 0 else (down, up)


def relative_change_of(badness: float, sign: int) -> float:
    """A badness (log scale) as the relative worsening a reviewer reads: latency +x %, rps -x %."""
    return math.expm1(badness) if sign > 0 else -math.expm1(-badness)


def settle(
    judged: MetricVerdict,
    evidence: Evidence,
    alpha: float,
    *,
    noise: str,
    more_windows_help: bool,
) -> MetricVerdict:
    """The verdict of ``evidence`` at level ``alpha`` against ``judged.tolerance``; ``noise`` names
    what the interval accounts for, for the reason a reviewer reads."""
    sign = worse_sign(judged.metric)
    worse, better = thresholds(judged.tolerance, sign)
    badness = sign * evidence.estimate
    half = evidence.half_width(alpha)
    low, high = evidence.estimate - half, evidence.estimate + half
    detectable = (
        relative_change_of(evidence.detectable_log(alpha, worse), sign)
        if math.isfinite(evidence.scale) and math.isfinite(worse) else None
    )
    # One-sided p of "the change is within the tolerance" on the side the estimate lies.
    if evidence.scale > 0:
        distance = badness - worse if badness >= 0 else -badness - better
        p_value = upper_tail(distance / evidence.scale, evidence.df)
    else:
        p_value = 0.0 if (badness > worse or -badness > better) else 1.0
    judged = replace(
        judged, ci_low=math.expm1(low), ci_high=math.expm1(high), p_value=p_value, detectable=detectable,
    )
    if badness - half > worse:
        return replace(judged, verdict="regression", reason=f"worse beyond tolerance, beyond {noise}")
    if -badness - half > better:
        return replace(judged, verdict="improvement", reason=f"better beyond tolerance, beyond {noise}")
    if badness > worse:
        more = "; more windows may settle it" if more_windows_help else ""
        return replace(judged, verdict="inconclusive", more_windows_help=more_windows_help,
                       reason=f"worse beyond tolerance but within {noise}{more}")
    if -badness > better:
        return replace(judged, verdict="pass", reason=f"better beyond tolerance, but within {noise}")
    return replace(judged, verdict="pass", reason="within tolerance")
