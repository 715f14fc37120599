"""Location of paired differences with one-sided bounds: the statistics behind ``judge_paired``.

``d_i`` are log ratios of window pairs measured back to back. Two estimators, both pure:

- ``signed_rank``: the Hodges-Lehmann estimate (median of the Walsh averages ``(d_i + d_j) / 2``)
  with the exact distribution-free bounds of the Wilcoxon signed-rank test (order statistics of the
  Walsh averages). One window hit by a neighbour moves it little, and it needs no normality.
  With n pairs the smallest reachable one-sided level is ``2**-n``, so alpha 0.01 needs 7 pairs.
- ``student_t``: mean and Student-t bounds; efficient when the d_i are normal, pulled by outliers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Location:
    """Estimate of the centre of d with one-sided ``1 - alpha`` bounds (None: unreachable with n)."""

    estimate: float
    low: float | None
    high: float | None
    p_value: float  # one-sided, in the direction of the estimate


def min_pairs_signed_rank(alpha: float) -> int:
    """The fewest pairs whose exact signed-rank test can reach ``alpha`` (2**-n <= alpha)."""
    return max(1, math.ceil(math.log2(1 / alpha)))


def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(T <= k) for k = 0..n(n+1)/2, T the signed-rank sum of n pairs under no shift (exact)."""
    top = n * (n + 1) // 2
    counts = np.zeros(top + 1, dtype=float)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return np.cumsum(counts) / 2.0**n


def signed_rank(d: np.ndarray, alpha: float) -> Location:
    """Hodges-Lehmann estimate with exact Wilcoxon bounds: the lower bound is the (k+1)-th smallest
    Walsh average, k the largest count with P(T <= k) <= alpha; the upper one mirrors it."""
    values = np.sort(np.asarray(d, dtype=float))
    n = values.size
    i, j = np.triu_indices(n)
    walsh = np.sort((values[i] + values[j]) / 2.0)
    estimate = float(np.median(walsh))
    cdf = _signed_rank_cdf(n)
    allowed = np.nonzero(cdf <= alpha)[0]
    low = high = None
    if allowed.size:
        k = int(allowed[-1])
        low, high = float(walsh[k]), float(walsh[walsh.size - 1 - k])
    # One-sided p of "no shift" in the estimate's direction: how many Walsh averages lie on the
    # other side of 0 (T counted on Walsh averages, ties at 0 split), under the exact null.
    other_side = (walsh < 0).sum() if estimate >= 0 else (walsh > 0).sum()
    other_side = float(other_side) + 0.5 * float((walsh == 0).sum())
    p_value = float(cdf[min(math.floor(other_side), cdf.size - 1)])
    return Location(estimate, low, high, p_value)


def student_t(d: np.ndarray, alpha: float) -> Location:
    """Mean with one-sided Student-t bounds (n - 1 degrees of freedom)."""
    from scipy.stats import t as student

    values = np.asarray(d, dtype=float)
    n = values.size
    mean = float(values.mean())
    error = max(float(values.std(ddof=1)) / math.sqrt(n), 1e-12)
    quantile = float(student.ppf(1 - alpha, n - 1))
    p_value = float(student.sf(abs(mean) / error, n - 1))
    return Location(mean, mean - quantile * error, mean + quantile * error, p_value)
