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


@dataclass(frozen=True)
class Row:
    """One line of the results table, already formatted; shared by the terminal and Markdown tables."""

    test: str
    metric: str
    baseline: str
    current: str
    change: str
    verdict: str


COLUMNS: tuple[str, ...] = ("test", "metric", "baseline", "current", "change", "verdict")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    if value in (float("inf"), float("-inf")):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f}%"


def _bound(v: RelativeVerdict) -> str:
    parts = [
        f"<={v.max_ratio:g}x" if v.max_ratio is not None else "",
        f">={v.min_ratio:g}x" if v.min_ratio is not None else "",
    ]
    return " ".join(p for p in parts if p)


def record_rows(record: TestRecord) -> list[Row]:
    """Table rows for one record: one per verdict and broken ceiling, or one saying why there are none."""
    rows: list[Row] = []
    if record.error:
        first = record.error.strip().splitlines()[0] if record.error.strip() else record.failure_kind
        rows.append(Row(record.nodeid, "-", "-", "-", "-", f"{record.failure_kind}: {first}"))
    for found in record.decision.findings:
        v = found.verdict
        if isinstance(v, RelativeVerdict):
            ci = "-" if v.ci_low is None or v.ci_high is None else f"{v.ci_low:.3g}..{v.ci_high:.3g}x"
            rows.append(
                Row(
                    record.nodeid,
                    f"{v.metric} {v.label_a}/{v.label_b}",
                    _bound(v),
                    "-" if v.ratio is None else f"{v.ratio:.3g}x",
                    ci,
                    found.shown,
                )
            )
        else:
            rows.append(
                Row(record.nodeid, v.metric, _num(v.baseline), _num(v.current), _pct(v.change), found.shown)
            )
    for f in record.ceiling_failures:
        limit = f"{'<=' if f.bound == 'max' else '>='} {f.limit:g}"
        rows.append(Row(record.nodeid, f.metric, limit, _num(f.actual), "-", f"ceiling {f.key}"))
    # A loosened gate is a row of its own, so a test failed by it does not read as all "pass".
    loosened = "gate loosened (allowed)" if record.policy.allow_gate_changes else "fail (gate loosened)"
    for c in record.gate_changes:
        if c.looser:
            rows.append(Row(record.nodeid, c.what, c.old, c.new, "-", loosened))
    if not rows and record.measurement is not None:
        m = record.measurement
        note = "new (no baseline)" if record.baseline is None else "passed"
        rows.append(Row(record.nodeid, "p50_ms", "-", _num(m.p50_ms), "-", note))
    return rows
