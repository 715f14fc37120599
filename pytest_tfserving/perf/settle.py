"""Measure until the verdict settles: the one loop behind ``perf.measure`` (alone, and beside the
baseline's deployment under --ab-baseline) and ``perf.compare``.

An inconclusive verdict whose interval could still shrink gets more windows, measured as a short
extension of the run and merged into it, until the verdict settles or the window budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict, needs_more_windows
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.merge import merge_measurements
from pytest_tfserving.perf.progress import Progress

# One measurement per side of a run: (server,), (reference, current) or (a, b).
Sides = tuple[Measurement, ...]
Verdict = TypeVar("Verdict", MetricVerdict, RelativeVerdict)
EXTENSION_WARMUP_S = 0.5  # an extension re-warms for this long at most: the server is warm already


@dataclass(frozen=True)
class Limits:
    """How much to measure: the first run's rule, the windows allowed in all, and how many windows
    an extension adds given those measured so far."""

    first: StabilityRule
    max_windows: int
    step: Callable[[int], int]

    def looks(self) -> int:
        """The most times a verdict can be judged: the first run (at its fewest windows, the first
        rule's minimum) and every extension until ``max_windows``. Each look spends alpha
        (``gate.alpha_budget``), so the count is an upper bound, never an estimate."""
        measured, looks = self.first.min_windows, 1
        while measured < self.max_windows:
            measured += max(1, self.step(measured))
            looks += 1
        return looks

    @classmethod
    def within(cls, rule: StabilityRule, first: StabilityRule | None = None) -> Limits:
        """Up to ``rule.max_windows`` in all, in two looks: the first run, then (while a verdict is
        unsettled) one extension to the maximum. Every look costs alpha (``gate.alpha_budget``), and
        two looks at 6 and 20 windows see nearly what six looks at 6, 9, ... 20 see, for a third of
        the price in the quantile."""
        return cls(first or rule, rule.max_windows, lambda measured: rule.max_windows - measured)

    @classmethod
    def in_rounds(cls, rounds: int, max_rounds: int) -> Limits:
        """``rounds`` windows first, then (while unsettled) one extension to ``max_rounds``."""
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        return cls(
            StabilityRule(min_windows=rounds, max_windows=rounds),
            max_rounds,
            lambda measured: max_rounds - measured,
        )


def measure_until_settled(
    measure_more: Callable[[StabilityRule, float], Sides],
    judge: Callable[[Sides], Sequence[Verdict]],
    limits: Limits,
    warmup_s: float,
    on_extend: Callable[[Sequence[Verdict], int], None] | None = None,
) -> tuple[Sides, list[Verdict]]:
    """Measure (``measure_more(rule, warmup_s)``: a run of every side), judge, and while a verdict
    needs more windows and the budget allows, measure an extension and judge the merged runs.
    ``on_extend(verdicts, windows)`` is told before each extension (for progress lines)."""
    sides = measure_more(limits.first, warmup_s)
    verdicts = list(judge(sides))
    while any(needs_more_windows(v) for v in verdicts) and (measured := len(sides[-1].windows)) < (
        limits.max_windows
    ):
        extra = limits.step(measured)
        if on_extend is not None:
            on_extend(verdicts, extra)
        more = measure_more(
            StabilityRule(min_windows=extra, max_windows=extra), min(warmup_s, EXTENSION_WARMUP_S)
        )
        sides = tuple(merge_measurements(run, extension) for run, extension in zip(sides, more, strict=True))
        verdicts = list(judge(sides))
    return sides, verdicts


def unsettled_text(verdicts: Sequence[MetricVerdict | RelativeVerdict], windows: int) -> str:
    """Why more windows are measured: "p50_ms inconclusive (worse beyond tolerance ...): 3 more"."""
    open_ones = [f"{v.metric} {v.verdict} ({v.reason})" for v in verdicts if needs_more_windows(v)]
    return f"unsettled: {'; '.join(open_ones)}: measuring {windows} more window{'s' if windows != 1 else ''}"


def announce_extensions(progress: Progress, label: str) -> Callable[[Sequence[Verdict], int], None]:
    """An ``on_extend`` for ``measure_until_settled`` that tells ``progress`` why it measures more."""

    def announce(verdicts: Sequence[Verdict], windows: int) -> None:
        progress.phase(f"{label}: {unsettled_text(verdicts, windows)}")

    return announce
