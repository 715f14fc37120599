"""The session's gate changes under ``--baseline-ref``: what the working tree gates differently from the ref.

Per measurement, ``gate_settings.compare_gates`` names each loosening and the test fails through
``gate/outcome.py``. What no test can fail for is decided here, for the whole session: a measurement
with a baseline at the ref that this session did not measure although it collected the test's file
(a renamed test, a changed parametrize id, a dropped measurement name, a skipped or deselected test),
and session settings that switch the gate off (``--update-baselines``). Pure functions and frozen
dataclasses; no pytest imports.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from pytest_tfserving.gate.gate_settings import GateChange


def file_of(mid: str) -> str:
    """The test file part of a measurement id (``dir/test_x.py::test_y[a]@name`` -> ``dir/test_x.py``)."""
    return mid.partition("::")[0]


def belongs_to(mid: str, nodeid: str) -> bool:
    """Is ``mid`` the test ``nodeid``'s measurement (its main one, or a named one)?"""
    return mid == nodeid or mid.startswith(nodeid + "@")


@dataclass(frozen=True)
class Unmeasured:
    """Baselines at the ref that this session did not measure, split by whether that loosens the gate."""

    not_run: tuple[str, ...]  # their test file was collected: a loosening
    not_collected: tuple[str, ...]  # their test file was not collected (another suite or a subset of files)


def unmeasured(
    at_ref: Iterable[str],
    *,
    collected_files: Collection[str],
    measured: Collection[str],
    failed_tests: Collection[str] = (),
) -> Unmeasured:
    """Split the ref's unmeasured baselines. One whose test failed or errored is left out: that test
    already fails the session, and its missing measurement follows from the failure."""
    not_run: list[str] = []
    not_collected: list[str] = []
    for mid in sorted(set(at_ref) - set(measured)):
        if any(belongs_to(mid, nodeid) for nodeid in failed_tests):
            continue
        (not_run if file_of(mid) in collected_files else not_collected).append(mid)
    return Unmeasured(tuple(not_run), tuple(not_collected))


def session_loosenings(*, update_baselines: bool) -> tuple[GateChange, ...]:
    """Session settings that loosen every test at once and are not recorded per baseline."""
    if update_baselines:
        # While re-recording, regressions and other-hardware baselines do not fail (outcome.GatePolicy).
        return (GateChange("--update-baselines", "off", "on (regressions do not fail)", looser=True),)
    return ()


@dataclass(frozen=True)
class MeasuredChange:
    """A measurement's gate change, as its test was judged."""

    mid: str
    change: GateChange


@dataclass(frozen=True)
class GateChangesReport:
    """Everything the "gate changes" section says about one session judged against ``ref``."""

    ref: str
    allowed: bool  # --allow-gate-changes
    changes: tuple[MeasuredChange, ...] = ()  # loosenings fail their tests (unless allowed)
    not_run: tuple[str, ...] = ()  # baselined at the ref, file collected, not measured: fails the session
    session: tuple[GateChange, ...] = ()  # session-wide loosenings: fail the session
    errors: tuple[str, ...] = ()  # the ref's baselines could not be listed: fails the session, always
    not_gated: tuple[str, ...] = ()  # measured without a baseline at the ref
    unrecorded: tuple[str, ...] = ()  # the ref's baseline predates recorded gate settings: not compared
    not_collected: tuple[str, ...] = ()  # baselined at the ref in files this session did not collect

    @property
    def loosened(self) -> tuple[MeasuredChange, ...]:
        return tuple(c for c in self.changes if c.change.looser)

    @property
    def tightened(self) -> tuple[MeasuredChange, ...]:
        return tuple(c for c in self.changes if not c.change.looser)

    @property
    def loosenings(self) -> int:
        return len(self.loosened) + len(self.not_run) + len(self.session)

    @property
    def fails_session(self) -> bool:
        """True when the session must fail for what no single test could fail for. Per-measurement
        loosenings are not counted here: they already failed their tests."""
        return bool(self.errors) or (not self.allowed and bool(self.not_run or self.session))

    def to_dict(self) -> dict[str, object]:
        """For the JSON report."""
        return {
            "ref": self.ref,
            "allowed": self.allowed,
            "fails_session": self.fails_session,
            "changes": [
                {"measurement": c.mid, "what": c.change.what, "old": c.change.old, "new": c.change.new,
                 "looser": c.change.looser}
                for c in self.changes
            ],
            "not_run": list(self.not_run),
            "session": [{"what": c.what, "old": c.old, "new": c.new} for c in self.session],
            "errors": list(self.errors),
            "not_gated": list(self.not_gated),
            "unrecorded": list(self.unrecorded),
            "not_collected": list(self.not_collected),
        }


def measured_changes(
    per_measurement: Iterable[tuple[str, Sequence[GateChange]]],
) -> tuple[MeasuredChange, ...]:
    return tuple(MeasuredChange(mid, change) for mid, changes in per_measurement for change in changes)
