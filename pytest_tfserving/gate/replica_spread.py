"""The offset part of a paired verdict when each side is served by several processes (--ab-replicas).

Two server processes of one deployment differ by a persistent offset (docs/GATE.md: sd 1.5 % at
concurrency 1). With ``m`` processes per side and pair ``i`` measured on replica ``i mod m`` of each
side, the pairs of replica ``j`` carry the offset ``c_j - r_j``; the estimate (about the mean of the
pairs) carries their weighted mean, whose sd is ``offset_sd * sqrt(sum n_j^2) / n``: ``offset_sd /
sqrt(m)`` for a balanced rotation. The pairs also show the offsets: a one-way random-effects check
over the replica groups tells when the replicas differ more than the known offset says, and then
the estimate from the data is used instead. Never less than the known offset. Pure functions.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

SPREAD_CHECK_LEVEL = 0.05  # the check that the replicas differ more than the known offset


def rotation_groups(n: int, replicas: int, first: int = 0) -> np.ndarray:
    """The replica of each of ``n`` pairs when pair ``i`` runs on replica ``(first + i) mod m``."""
    if replicas < 1:
        raise ValueError(f"replicas={replicas!r} must be >= 1")
    return (first + np.arange(n)) % replicas


def rotation_share(groups: np.ndarray) -> float:
    """How much of one process pair's offset the mean of the pairs keeps: ``sqrt(sum n_j^2) / n``
    (1 for one replica per side, ``1 / sqrt(m)`` for a balanced rotation over ``m``)."""
    if groups.size == 0:
        return 1.0
    counts = np.bincount(groups.astype(int))
    return math.sqrt(float(np.dot(counts, counts))) / groups.size


def estimated_spread(d: np.ndarray, groups: np.ndarray) -> tuple[float, float, float] | None:
    """One-way random effects over the replica groups of the paired log ratios ``d``: the
    between-group sd (the offset between a current and a reference process, from the data; 0 when
    the groups agree better than their noise). None when the pairs do not allow it (fewer than 2
    groups, or a group with fewer than 2 pairs).

    Returns ``(between_sd, n0, msw)``: ``n0`` the effective group size, ``msw`` the within-group
    mean square."""
    labels = np.unique(groups)
    if labels.size < 2:
        return None
    parts = [d[groups == g] for g in labels]
    if any(p.size < 2 for p in parts):
        return None
    n, m = d.size, labels.size
    sizes = np.array([p.size for p in parts], dtype=float)
    means = np.array([p.mean() for p in parts])
    grand = float(d.mean())
    msb = float(np.dot(sizes, (means - grand) ** 2)) / (m - 1)
    msw = sum(float(((p - p.mean()) ** 2).sum()) for p in parts) / (n - m)
    n0 = (n - float(np.dot(sizes, sizes)) / n) / (m - 1)
    return math.sqrt(max(0.0, (msb - msw) / n0)), n0, msw


def replica_offset(d: np.ndarray, groups: np.ndarray, known_sd: float,
                   level: float = SPREAD_CHECK_LEVEL) -> tuple[float, bool]:
    """The offset sd between a current and a reference process to judge with: ``known_sd``, unless
    the replica groups show with confidence (``level``) that they differ more; then the estimate
    from the data. Returns ``(offset_sd, from_data)``. Never less than ``known_sd``."""
    spread = estimated_spread(d, groups)
    if spread is None:
        return known_sd, False
    between, n0, msw = spread
    if between <= known_sd:
        return known_sd, False
    m, n = np.unique(groups).size, d.size
    msb = msw + n0 * between**2
    # Under "the offsets' sd is known_sd", MSB / (MSW + n0 known^2) is about F(m - 1, n - m).
    statistic = msb / (msw + n0 * known_sd**2)
    p_value = float(special.fdtrc(m - 1, n - m, statistic))
    return (between, True) if p_value < level else (known_sd, False)
