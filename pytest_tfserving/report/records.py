"""What every report renders: one record per perf test, whatever happened to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import Failure
from pytest_tfserving.gate.gate_settings import GateChange
from pytest_tfserving.gate.outcome import Decision, GatePolicy, Status, decide, error_kind
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.load.results import Measurement

Outcome = Status


@dataclass(frozen=True)
class TestRecord:
    """A perf test's result: measurement, its baseline, verdicts, broken ceilings, or the error text."""

    __test__ = False  # not a pytest test class despite the name

    nodeid: str
    measurement: Measurement | None = None
    baseline: Baseline | None = None
    verdicts: tuple[MetricVerdict | RelativeVerdict, ...] = ()
    ceiling_failures: tuple[Failure, ...] = ()
    error: str | None = None
    fingerprint: Mapping[str, Any] | None = field(default=None)
    assertion_failed: bool = False  # ``error`` is the test's own failed assertion, not a crash
    notes: tuple[str, ...] = ()  # what the measurement noted (e.g. how its baseline was chosen)
    policy: GatePolicy = field(default_factory=GatePolicy)  # the gate settings it was judged under
    # Under --baseline-ref: how the test's gate settings differ from those its baseline at the ref
    # recorded (gate_settings.compare_gates); a loosening fails it unless --allow-gate-changes.
    gate_changes: tuple[GateChange, ...] = ()

    @property
    def decision(self) -> Decision:
        """Its outcome, decided in ``gate/outcome.py``: the same rule that failed or passed the test."""
        return decide(
            self.verdicts,
            self.ceiling_failures,
            policy=self.policy,
            has_baseline=self.baseline is not None,
            baseline_fingerprint=None if self.baseline is None else self.baseline.fingerprint,
            fingerprint=self.fingerprint,
            notes=self.notes,
            error=self.error,
            assertion_failed=self.assertion_failed,
            gate_changes=self.gate_changes,
        )

    @property
    def failure_kind(self) -> str:
        return error_kind(self.assertion_failed)

    @property
    def outcome(self) -> Outcome:
        """The worst thing that happened, in the order a reviewer needs to know it."""
        return self.decision.status
