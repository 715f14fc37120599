"""What the session hands a test's ``perf`` handle, and what the handle records for the gate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import PerfChecks
from pytest_tfserving.gate.run_drift import PooledDrift
from pytest_tfserving.gate.verdicts import MetricVerdict
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.options import Settings
from pytest_tfserving.perf.progress import Progress, Silent

if TYPE_CHECKING:
    from pytest_tfserving.gate.measured_servers import BesideServers

# A running server as the handle needs it (the backends' RunningServer satisfies this).
Server = Any


@dataclass
class Recorded:
    """One baselined measurement of a test (``name`` None: the test's main measurement)."""

    name: str | None
    measurement: Measurement
    fingerprint: dict[str, Any]
    baseline: Baseline | None
    verdicts: list[MetricVerdict]
    notes: list[str] = field(default_factory=list)
    deployment: dict[str, Any] | None = None  # what was measured, for --update-baselines
    # The window settings it ran with (gate_settings.WINDOW_SETTINGS): recorded with its baseline and
    # compared under --baseline-ref, so a test body cannot shorten its own measurement unnoticed.
    windows: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PerfContext:
    """What the session provides to one test's handle."""

    settings: Settings
    checks: PerfChecks
    find_baseline: Callable[[str | None], tuple[Baseline | None, list[str]]]
    fingerprint: Callable[[Server], dict[str, Any]]
    gpu_indices: tuple[int, ...] | None = None
    # This test's share of --perf-alpha (``gate.alpha_budget``); the handle spends it over its calls.
    alpha: float = 0.01
    deployment: Callable[[Server], dict[str, Any] | None] = lambda server: None
    # Where the handle reports what it is measuring (the terminal in a session; silence elsewhere).
    progress: Progress = field(default_factory=Silent)
    # --ab-baseline: the baseline's own deployment running beside ``server`` (the given number of
    # processes of it, and as many of the test's), or None and why not
    reference: Callable[[Baseline | None, Server, int], tuple[BesideServers | None, str | None]] = (
        lambda baseline, server, replicas: (None, None)
    )
    # The run-to-run drift pooled over the session's baselines on a baseline's hardware, by metric
    # (``gate.run_drift``); empty: each baseline's history alone.
    pooled_drift: Callable[[Baseline], Mapping[str, PooledDrift]] = lambda baseline: {}
