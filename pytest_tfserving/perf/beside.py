"""--ab-baseline: the baseline's own deployment served beside this one, measured in the same moments
and judged pair by pair, so the machine's drift since the baseline was stored cancels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_tfserving.gate.alpha_budget import per_verdict_look
from pytest_tfserving.gate.ceilings import PerfChecks
from pytest_tfserving.gate.fingerprint import hardware_key
from pytest_tfserving.gate.relative import judge_against_reference
from pytest_tfserving.gate.verdicts import (
    DEFAULT_ALPHA,
    DEFAULT_INTERLEAVED_OFFSET,
    DEFAULT_PROCESS_OFFSET,
    MetricVerdict,
)
from pytest_tfserving.load.alternating import measure_alternating
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.interleaved import measure_interleaved
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.context import Server
from pytest_tfserving.perf.crashes import alive_around
from pytest_tfserving.perf.progress import Progress, Silent
from pytest_tfserving.perf.settle import Limits, Sides, announce_extensions, measure_until_settled

FIRST_PAIRS = 7  # the first look's pairs: fewer give a t quantile too wide to settle anything


def rps_from_latency(measurement: Measurement) -> Measurement:
    """Per-window rps as concurrency / mean latency (Little's law for a closed loop). With requests
    alternating between two servers both complete the same count, so their measured rps cannot differ;
    what differs, and what a server alone would turn into throughput, is the latency."""
    concurrency = measurement.concurrency or 1
    windows = tuple(
        dataclasses.replace(w, rps=1000.0 * concurrency / w.mean_ms if w.mean_ms > 0 else 0.0)
        for w in measurement.windows
    )
    return dataclasses.replace(measurement, windows=windows)


def rotated(configs: Sequence[LoadConfig], start: int) -> list[LoadConfig]:
    """``configs`` starting at process ``start mod m``: a run that continues after ``start`` pairs
    keeps the rotation (pair ``i`` of the whole measurement on process ``i mod m``)."""
    k = start % len(configs)
    return [*configs[k:], *configs[:k]]


def measure_beside(
    references: Sequence[Server],
    servers: Sequence[Server],
    reference_configs: Sequence[LoadConfig],
    configs: Sequence[LoadConfig],
    *,
    rule: StabilityRule,
    warmup_s: float,
    window_s: float,
    checks: PerfChecks,
    fingerprint: Mapping[str, Any],
    alpha: float = DEFAULT_ALPHA,
    progress: Progress | None = None,
) -> tuple[list[MetricVerdict], str]:
    """The two deployments in paired windows, judged pairwise (more pairs while unsettled, up to
    ``rule.max_windows``); returns the verdicts and a note that says how they were measured.
    ``alpha``: this call's share of --perf-alpha, spread over the gated metrics and the looks.

    ``references`` / ``servers`` (with one config each): the processes of each side
    (--ab-replicas), ``servers[0]`` the test's own; pair ``i`` runs on process ``i mod m`` of each
    side, so the persistent offsets between processes average out (``judge_paired``)."""
    m = len(references)
    if m < 1 or not (len(servers) == len(reference_configs) == len(configs) == m):
        raise ValueError(
            f"measure_beside needs as many processes and configs on each side, got {len(references)} "
            f"and {len(servers)} servers, {len(reference_configs)} and {len(configs)} configs"
        )
    config = configs[0]
    # One request in flight: alternate requests, so both sides share every millisecond (the VM's
    # speed swings within a second). More in flight: the two servers would compete for the CPU,
    # so they take turns by window instead (docs/GATE.md).
    alternate = config.mode == "closed" and config.concurrency == 1
    pair = measure_alternating if alternate else measure_interleaved

    progress = progress or Silent()
    how = "alternating requests" if alternate else "interleaved windows"

    measured = [0]  # pairs so far: the next run continues the rotation

    def rounds(windows: StabilityRule, warmup: float) -> Sides:
        progress.phase(f"--ab-baseline: {windows.max_windows} pairs of {window_s:g} s beside the baseline's "
                       f"deployment ({how}{f', {m} processes per side' if m > 1 else ''})")
        start = measured[0]
        # The first run warms every process: alternating shares its warm-up among them.
        warm = warmup * m if (alternate and start == 0) else warmup
        with alive_around(*references, *servers):
            sides = pair(rotated(reference_configs, start), rotated(configs, start), windows.max_windows,
                         warmup_s=warm, window_s=window_s)
        measured[0] += len(sides[1].windows)
        return sides

    # Start with enough pairs for the interval to mean something; extend while unsettled.
    first = min(rule.max_windows, max(rule.min_windows, FIRST_PAIRS))
    limits = Limits.within(rule, first=StabilityRule(min_windows=first, max_windows=first))
    look_alpha = per_verdict_look(alpha, len(checks.gate), limits.looks())

    def verdicts_of(sides: Sides) -> list[MetricVerdict]:
        ref, cur = sides
        if alternate:  # strict alternation completes as many requests on each side: see below
            ref, cur = rps_from_latency(ref), rps_from_latency(cur)
        return judge_against_reference(
            ref,
            cur,
            gate=checks.gate,
            tolerance=checks.tolerance,
            tolerances=checks.tolerances,
            alpha=look_alpha,
            hardware=hardware_key(fingerprint),
            offset_sd=DEFAULT_PROCESS_OFFSET if alternate else DEFAULT_INTERLEAVED_OFFSET,
            replicas=m,
        )

    (ref, cur), verdicts = measure_until_settled(
        rounds, verdicts_of, limits, warmup_s,
        on_extend=announce_extensions(progress, "--ab-baseline"),
    )
    models = ", ".join(f"{model.name} from {model.base_path}" for model in references[0].spec.models)
    processes = (f"{m} server processes per side, the pairs rotating over them" if m > 1
                 else "one server process per side")
    note = (
        f"--ab-baseline: judged against the baseline's deployment ({models}) served beside it in "
        f"{len(cur.windows)} {'alternating' if alternate else 'interleaved'} window pairs, "
        f"{processes}; p50 {ref.p50_ms:.4g} ms on the baseline's side, {cur.p50_ms:.4g} ms on this run's"
    )
    if alternate:
        note += "; rps judged as concurrency / mean latency (alternating splits throughput evenly)"
    return verdicts, note
