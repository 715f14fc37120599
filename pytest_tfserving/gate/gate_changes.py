"""The session's gate changes under ``--baseline-ref``: what the working tree gates differently from the ref.

Per measurement, ``gate_settings.compare_gates`` names each loosening and the test fails through
``gate/outcome.py``. What no test can fail for is decided here, for the whole session: a measurement
with a baseline at the ref that this session did not measure although it collected the test's file
(a renamed test, a changed parametrize id, a dropped measurement name, a skipped or deselected test),
and session settings that switch the gate off (``--update-baselines``). A pytest-split shard lists
the other shards' tests apart (``other_shards``): ``across_shards`` checks them over all the shards'
reports. Pure functions and frozen dataclasses; no pytest imports.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    other_shards: tuple[str, ...] = ()  # their tests are other pytest-split shards' to run


def unmeasured(
    at_ref: Iterable[str],
    *,
    collected_files: Collection[str],
    measured: Collection[str],
    failed_tests: Collection[str] = (),
    elsewhere: Collection[str] = (),
) -> Unmeasured:
    """Split the ref's unmeasured baselines. One whose test failed or errored is left out: that test
    already fails the session, and its missing measurement follows from the failure. One whose test
    is in ``elsewhere`` (node ids that pytest-split gave to other shards) is not this session's."""
    not_run: list[str] = []
    not_collected: list[str] = []
    other_shards: list[str] = []
    for mid in sorted(set(at_ref) - set(measured)):
        if any(belongs_to(mid, nodeid) for nodeid in failed_tests):
            continue
        if any(belongs_to(mid, nodeid) for nodeid in elsewhere):
            other_shards.append(mid)
            continue
        (not_run if file_of(mid) in collected_files else not_collected).append(mid)
    return Unmeasured(tuple(not_run), tuple(not_collected), tuple(other_shards))


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
    other_shards: tuple[str, ...] = ()  # baselined at the ref, their tests run by other shards
    merged_shards: int = 0  # > 0: the union of this many shards' reports (across_shards)

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
            "other_shards": list(self.other_shards),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateChangesReport:
        """Read ``to_dict``'s record back (a shard's JSON report); keys it lacks are empty."""
        def names(key: str) -> tuple[str, ...]:
            return tuple(str(m) for m in data.get(key) or ())

        return cls(
            ref=str(data["ref"]),
            allowed=bool(data.get("allowed", False)),
            changes=tuple(
                MeasuredChange(str(c["measurement"]), GateChange(
                    str(c["what"]), str(c["old"]), str(c["new"]), looser=bool(c["looser"])))
                for c in data.get("changes") or ()
            ),
            not_run=names("not_run"),
            session=tuple(
                GateChange(str(c["what"]), str(c["old"]), str(c["new"]), looser=True)
                for c in data.get("session") or ()
            ),
            errors=names("errors"),
            not_gated=names("not_gated"),
            unrecorded=names("unrecorded"),
            not_collected=names("not_collected"),
            other_shards=names("other_shards"),
        )


def measured_changes(
    per_measurement: Iterable[tuple[str, Sequence[GateChange]]],
) -> tuple[MeasuredChange, ...]:
    return tuple(MeasuredChange(mid, change) for mid, changes in per_measurement for change in changes)


def across_shards(
    shards: Sequence[GateChangesReport],
    *,
    allowed: bool,
    measured: Collection[str],
    failed_tests: Collection[str] = (),
) -> GateChangesReport:
    """One report for the shards of one suite (each judged against the same ref), as an unsharded
    session would have made it: a test one shard left to the others and that no shard measured (a
    missing shard's, or one deselected everywhere) is "not run", a loosening. ``measured``: the
    measurement ids of every shard; ``failed_tests``: the node ids that failed or errored in any.
    ``allowed``: the merge's --allow-gate-changes, or every shard's own."""
    if not shards:
        raise ValueError("no shard reports to merge")
    left = unmeasured(
        {mid for s in shards for mid in s.other_shards},
        collected_files={file_of(mid) for s in shards for mid in s.other_shards},
        measured=measured,
        failed_tests=failed_tests,
    )
    done = set(measured)

    def union(values: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(values) - done))

    return GateChangesReport(
        ref=shards[0].ref,
        allowed=allowed or all(s.allowed for s in shards),
        changes=tuple(c for s in shards for c in s.changes),
        not_run=tuple(sorted({*union(m for s in shards for m in s.not_run), *left.not_run})),
        session=tuple(dict.fromkeys(c for s in shards for c in s.session)),
        errors=tuple(dict.fromkeys(e for s in shards for e in s.errors)),
        not_gated=tuple(sorted({m for s in shards for m in s.not_gated})),
        unrecorded=tuple(sorted({m for s in shards for m in s.unrecorded})),
        not_collected=union(m for s in shards for m in s.not_collected),
        merged_shards=len(shards),
    )
