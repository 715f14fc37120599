"""The run-to-run drift of a runner, pooled over the run histories of every baseline recorded on it.

One test's five recorded runs estimate its drift between sessions on four degrees of freedom: five
runs that happen to agree (a drift of 24 % shows as under 6 % in about one five-run history in 160)
say little about the next session. The drift is mostly a property of the runner (server placement,
neighbours, the host's state), so the judge pools it: the variance of log run medians, per gated
metric, over every baseline history recorded with the same hardware key, each history on its
``runs - 1`` degrees of freedom, a history far wider than the rest set aside (a bimodal metric must
not widen every test's error). A test whose own runs drift significantly more than the pool (F test
at 5 %) and more than the floor is judged on its own runs. Pure functions; the rule is in
docs/GATE.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_tfserving.gate.fingerprint import hardware_key

if TYPE_CHECKING:
    from pytest_tfserving.gate.baselines import Baseline

UNKNOWN_HARDWARE = "unknown hardware"
OWN_DRIFT_TEST_LEVEL = 0.05  # the F test that keeps a test on its own runs when they drift more
OUTLIER_TEST_LEVEL = 0.01  # the F test that sets a far wider history aside from the pool


@dataclass(frozen=True)
class PooledDrift:
    """``sd`` of log run medians pooled over ``histories`` run histories, on ``df`` degrees of freedom."""

    sd: float
    df: int
    histories: int
    set_aside: int = 0  # histories left out as drifting far more than the rest

    def describe(self) -> str:
        aside = f"; {self.set_aside} drifting far more set aside" if self.set_aside else ""
        return (f"the run-to-run drift pooled over {self.histories} baseline histories on this runner "
                f"({self.df} degrees of freedom{aside})")


def pool_histories(histories: Iterable[Sequence[float]]) -> PooledDrift | None:
    """The pooled drift of run histories (each a sequence of run medians of one metric), or None when
    no history has two usable runs. Non-positive and non-finite values are left out.

    A history that drifts far more than the others (a bimodal metric, a test on a cache) would widen
    every test's error: the widest is set aside while its variance exceeds the rest's pool beyond
    chance (F test at ``OUTLIER_TEST_LEVEL``, Bonferroni over the histories), and is judged on its own
    runs (``drifts_more_than_pool`` at the judge)."""
    parts: list[tuple[float, int]] = []  # (sum of squares, degrees of freedom) per history
    for history in histories:
        logs = [math.log(v) for v in history if math.isfinite(v) and v > 0]
        if len(logs) < 2:
            continue
        mean = math.fsum(logs) / len(logs)
        parts.append((math.fsum((x - mean) ** 2 for x in logs), len(logs) - 1))
    if not parts:
        return None
    excluded = 0
    while len(parts) > 2:
        widest = max(parts, key=lambda part: part[0] / part[1])
        rest = list(parts)
        rest.remove(widest)
        rest_pool = _pool(rest, 0)
        level = OUTLIER_TEST_LEVEL / len(parts)
        if not drifts_more_than_pool(math.sqrt(widest[0] / widest[1]), widest[1], rest_pool, level=level):
            break
        parts, excluded = rest, excluded + 1
    return _pool(parts, excluded)


def _pool(parts: Sequence[tuple[float, int]], excluded: int) -> PooledDrift:
    df = sum(d for _, d in parts)
    return PooledDrift(math.sqrt(math.fsum(ss for ss, _ in parts) / df), df, len(parts), excluded)


def drifts_more_than_pool(own_sd: float, own_df: int, pooled: PooledDrift,
                          level: float = OWN_DRIFT_TEST_LEVEL) -> bool:
    """Whether a history's own spread exceeds the pool's beyond chance (one-sided F test at ``level``)."""
    from scipy.stats import f

    if own_df < 1 or pooled.sd <= 0:
        return own_sd > 0
    return own_sd**2 > pooled.sd**2 * float(f.ppf(1 - level, own_df, pooled.df))


def baseline_hardware(baseline: Baseline) -> str:
    """The hardware key a baseline was recorded on (``UNKNOWN_HARDWARE`` before fingerprints)."""
    return hardware_key(baseline.fingerprint) if baseline.fingerprint else UNKNOWN_HARDWARE


@dataclass(frozen=True)
class RunDriftPools:
    """Pooled drift per (hardware key, metric), from the baselines a session judges against."""

    pools: Mapping[tuple[str, str], PooledDrift]

    @classmethod
    def from_baselines(cls, baselines: Iterable[Baseline]) -> RunDriftPools:
        grouped: dict[tuple[str, str], list[list[float]]] = {}
        for baseline in baselines:
            key = baseline_hardware(baseline)
            metrics = {m for run in baseline.history for m in run.values}
            for metric in metrics:
                grouped.setdefault((key, metric), []).append(baseline.run_values(metric))
        pools = {k: p for k, histories in grouped.items() if (p := pool_histories(histories)) is not None}
        return cls(pools)

    def for_baseline(self, baseline: Baseline) -> dict[str, PooledDrift]:
        """The pools of ``baseline``'s hardware key, by metric."""
        key = baseline_hardware(baseline)
        return {metric: pool for (hw, metric), pool in self.pools.items() if hw == key}

