"""Pass or fail: the one place that turns verdicts, broken ceilings and errors into an outcome.

The test's own result (what the gate fails it with), the terminal table, the Markdown and the JSON
report all ask this module, so what a reviewer reads is what the test got. Pure functions and frozen
dataclasses; no pytest imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_tfserving.gate.ceilings import Failure
from pytest_tfserving.gate.fingerprint import compare_fingerprints, incomparable_reason
from pytest_tfserving.gate.gate_settings import GateChange
from pytest_tfserving.gate.speed_probe import speed_comparison, speed_note
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict

Status = Literal["error", "failed", "inconclusive", "incomparable", "passed", "new"]
AnyVerdict = MetricVerdict | RelativeVerdict

LOOSENED_FIX = (
    "a maintainer's run accepts a gate change with --allow-gate-changes (docs/GATE.md, "
    '"A PR cannot loosen its gate")'
)
# An unsettled comparison shows neither the claim nor its breach; where its point estimate lies is
# told, not judged (a claim that holds with no margin would fail half of those runs).
NOT_SHOWN_BEYOND = " -> claim not shown (point estimate beyond the bound, within the noise)"
NOT_SHOWN_WITHIN = " -> claim not shown (point estimate within the bound, within the noise)"


@dataclass(frozen=True)
class GatePolicy:
    """The settings that change what fails: --update-baselines, --perf-hardware-mismatch,
    --perf-inconclusive and --allow-gate-changes."""

    update_baselines: bool = False  # regressions and other hardware do not fail while re-recording
    hardware_mismatch_fails: bool = True  # a baseline from other hardware fails (warn: only shown)
    inconclusive_fails: bool = False  # an unsettled verdict fails instead of being shown
    allow_gate_changes: bool = False  # a loosened gate (against --baseline-ref's settings) is accepted

    @classmethod
    def from_settings(cls, settings: Any) -> GatePolicy:
        return cls(
            update_baselines=bool(settings.update_baselines),
            hardware_mismatch_fails=settings.perf_hardware_mismatch == "fail",
            inconclusive_fails=getattr(settings, "perf_inconclusive", "warn") == "fail",
            allow_gate_changes=bool(getattr(settings, "allow_gate_changes", False)),
        )


def relative_fails(verdict: RelativeVerdict) -> bool:
    """A comparison fails by itself only when its bound is broken with confidence. Still inconclusive
    after the extra rounds, it is its own outcome, like every judge's inconclusive: shown with what
    the run could settle, and failed under --perf-inconclusive=fail (``verdict_fails``). Failing it
    on its point estimate would fail a claim that holds with no margin half the time, beyond
    --perf-alpha (docs/GATE.md, "perf.compare: coverage")."""
    return verdict.verdict == "fail"


def estimate_beyond_bound(verdict: RelativeVerdict) -> bool:
    """Whether the comparison's point estimate breaks its bound (told with an unsettled verdict)."""
    if verdict.ratio is None:
        return False
    too_high = verdict.max_ratio is not None and verdict.ratio > verdict.max_ratio
    too_low = verdict.min_ratio is not None and verdict.ratio < verdict.min_ratio
    return too_high or too_low


DEFAULT_POLICY = GatePolicy()


def verdict_fails(verdict: AnyVerdict, policy: GatePolicy = DEFAULT_POLICY) -> bool:
    """Does this verdict fail the test? A regression does unless baselines are being re-recorded; a
    baseline from other hardware does unless --perf-hardware-mismatch=warn; an inconclusive one does
    with --perf-inconclusive=fail."""
    if isinstance(verdict, RelativeVerdict):
        return relative_fails(verdict) or (verdict.verdict == "inconclusive" and policy.inconclusive_fails)
    if policy.update_baselines:
        return False
    if verdict.verdict == "regression":
        return True
    if verdict.verdict == "inconclusive":
        return policy.inconclusive_fails
    return verdict.verdict == "incomparable" and policy.hardware_mismatch_fails


def error_kind(assertion_failed: bool) -> Literal["failed", "error"]:
    """The test's own failed assertion is a failure; anything else (a crashed server) is an error."""
    return "failed" if assertion_failed else "error"


@dataclass(frozen=True)
class Finding:
    """One verdict and what the gate made of it."""

    verdict: AnyVerdict
    fails: bool
    shown: str  # the verdict cell of the tables: "fail (inconclusive)" when an unsettled claim fails
    message: str  # the verdict's message, with why it fails or not where the verdict alone misleads
    gate_line: str | None  # the line the test prints (failure or note); None for a plain pass


def finding(
    verdict: AnyVerdict,
    policy: GatePolicy = DEFAULT_POLICY,
    *,
    baseline_fingerprint: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
) -> Finding:
    fails = verdict_fails(verdict, policy)
    kind = verdict.verdict
    shown = f"fail ({kind})" if fails and kind not in ("regression", "fail") else kind
    message = verdict.message()
    if isinstance(verdict, RelativeVerdict) and kind == "inconclusive" and verdict.ratio is not None:
        message += NOT_SHOWN_BEYOND if estimate_beyond_bound(verdict) else NOT_SHOWN_WITHIN
    line: str | None = message
    if kind == "incomparable":
        reason = incomparable_reason(baseline_fingerprint or {}, fingerprint or {})
        diffs = compare_fingerprints(baseline_fingerprint or {}, fingerprint or {})
        # The same hardware key at another speed: the verdict's own reason says so.
        line = "baseline not comparable, not judged: " + (reason or verdict.reason or "; ".join(diffs[:4]))
    elif kind in ("pass", "improvement") or (kind == "regression" and not fails):
        line = None
    return Finding(verdict, fails, shown, message, line)


@dataclass(frozen=True)
class Decision:
    """The outcome of one record (a measurement, a test's comparisons, or an error)."""

    status: Status
    findings: tuple[Finding, ...]
    lines: tuple[str, ...]  # notes, broken ceilings and findings, as the test prints them

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")


def decide(
    verdicts: Iterable[AnyVerdict] = (),
    ceiling_failures: Sequence[Failure] = (),
    *,
    policy: GatePolicy = DEFAULT_POLICY,
    has_baseline: bool = False,
    baseline_fingerprint: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    error: str | None = None,
    assertion_failed: bool = False,
    gate_changes: Sequence[GateChange] = (),
) -> Decision:
    """The worst thing that happened, in the order a reviewer needs to know it. ``gate_changes``
    (gate_settings.compare_gates against the --baseline-ref baseline's recorded settings): any
    loosening fails, unless the policy allows gate changes."""
    findings = tuple(
        finding(v, policy, baseline_fingerprint=baseline_fingerprint, fingerprint=fingerprint)
        for v in verdicts
    )
    loosened = () if policy.allow_gate_changes else tuple(c for c in gate_changes if c.looser)
    speed = speed_note(baseline_fingerprint or {}, fingerprint or {}) if findings else None
    comparison = speed_comparison(baseline_fingerprint or {}, fingerprint or {})
    if speed and any(comparison in (f.gate_line or "") for f in findings):
        speed = None  # already the reason the baseline is not comparable
    lines = (
        *notes,
        *(f"ceiling broken: {f.message()}" for f in ceiling_failures),
        # One line per distinct finding: an incomparable baseline reads the same for every metric.
        *dict.fromkeys(f.gate_line for f in findings if f.gate_line is not None),
        *((speed,) if speed else ()),
        *(f"gate loosened against --baseline-ref: {c.line()}" for c in loosened),
        *((LOOSENED_FIX,) if loosened else ()),
    )
    shown = {f.shown for f in findings}
    status: Status
    if error:
        status = error_kind(assertion_failed)
    elif ceiling_failures or loosened or any(f.fails for f in findings):
        status = "failed"
    elif "inconclusive" in shown:
        status = "inconclusive"
    elif "incomparable" in shown:
        status = "incomparable"
    elif not has_baseline and not any(isinstance(f.verdict, RelativeVerdict) for f in findings):
        status = "new"
    else:
        status = "passed"
    return Decision(status, findings, lines)


@dataclass(frozen=True)
class GateResult:
    """A test's result over all its records: fail it with ``failure_text()``, or print ``lines`` as notes."""

    failed: bool
    lines: tuple[str, ...]

    def failure_text(self) -> str:
        return "performance gate:\n" + "\n".join(self.lines)


def gate_result(notes: Sequence[str], decisions: Sequence[tuple[str, Decision]]) -> GateResult:
    """The test's notes, then each record's lines prefixed by its id; failed when any record failed."""
    lines = (*notes, *(f"{nodeid}: {line}" for nodeid, d in decisions for line in d.lines))
    return GateResult(any(d.failed for _, d in decisions), lines)
