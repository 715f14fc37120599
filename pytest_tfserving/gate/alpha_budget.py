"""How --perf-alpha is spent: one pytest session is one decision about one pull request.

The promise: an unchanged pull request gets at least one false ``regression`` (or a broken in-run
claim) with probability at most ``--perf-alpha``, over all its perf tests, gated metrics and
sequential looks together. The rule is a union bound, so it holds whatever the dependence between
verdicts (metrics of one run are strongly dependent, looks at a growing run more so):

- each of the ``N`` perf tests selected in the session gets ``alpha / N``;
- within a test, the k-th judged call (``perf.measure`` against a baseline, ``perf.compare``,
  counted in call order) gets ``6 / (pi^2 k^2)`` of the test's share (the shares sum to 1 over any
  number of calls; a test with one call keeps 61 %);
- a call's share is split evenly over its gated metrics, and each metric's over the looks the
  call may take (the first run and every extension ``measure_until_settled`` may add).

Why not Holm or a session-end correction: the test's outcome is reported when the test ends, so
each verdict must be decided with the alpha it has then. The price of the union bound is small in
the quantile: ``z`` at 0.01 / 20 verdicts is 3.29 against 2.33 at 0.01 (docs/GATE.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CALL_SHARES = 6 / math.pi**2  # sum over k >= 1 of 1/k^2 is pi^2/6


@dataclass(frozen=True)
class SessionAlpha:
    """``alpha`` for the whole session, spread evenly over its ``tests`` perf tests."""

    alpha: float
    tests: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha={self.alpha!r} must be in (0, 0.5), e.g. 0.01")

    def per_test(self) -> float:
        return self.alpha / max(1, self.tests)


@dataclass
class AlphaSpender:
    """One test's share, handed out to its judged calls in call order."""

    alpha: float
    calls: int = field(default=0)

    def next_call(self) -> float:
        """The share of the next judged call: ``alpha * 6 / (pi^2 k^2)`` for the k-th."""
        self.calls += 1
        return self.alpha * CALL_SHARES / self.calls**2


def per_verdict_look(call_alpha: float, metrics: int, looks: int) -> float:
    """The level each look of each metric of one call is tested at (Bonferroni within the call)."""
    return call_alpha / max(1, metrics) / max(1, looks)
