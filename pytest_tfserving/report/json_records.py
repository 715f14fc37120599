"""The JSON report's tests read back into ``TestRecord``s, so the reports render from them as they did
from the session's own records (the merge of shards' reports uses this).

A key the report lacks (written by an older plugin) takes the record's default; a malformed value
raises ``ValueError`` naming the test, for the caller to name the file. No pytest imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from pytest_tfserving.gate.baselines import Baseline, RunSummary
from pytest_tfserving.gate.ceilings import Failure
from pytest_tfserving.gate.gate_settings import GateChange
from pytest_tfserving.gate.outcome import GatePolicy
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.report.records import TestRecord


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The dataclass's own fields of ``data`` (the report adds others: message, kind, fails)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def restore_nonfinite(data: Any, found: Sequence[Mapping[str, Any]]) -> Any:
    """``data`` (already a copy: changed in place) with each listed path set back to its float."""
    for entry in found:
        *parents, last = entry["path"]
        target = data
        for key in parents:
            target = target[key]
        target[last] = float(entry["value"])
    return data


def _verdict(data: Mapping[str, Any]) -> MetricVerdict | RelativeVerdict:
    cls = RelativeVerdict if data.get("kind") == "relative" else MetricVerdict
    return cls(**_known(cls, data))


def _baseline(nodeid: str, data: Mapping[str, Any]) -> Baseline:
    return Baseline(
        nodeid=nodeid,
        measurement=Measurement.from_dict(dict(data["measurement"])),
        fingerprint=dict(data.get("fingerprint") or {}),
        created=str(data.get("created", "")),
        source=str(data.get("source", "")),
        runs=tuple(RunSummary.from_dict(run) for run in data.get("runs") or ()),
    )


def record_from_dict(data: Mapping[str, Any]) -> TestRecord:
    """One test of the JSON report (``json_report.record_to_dict``) as the record it was made from."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a test entry is {type(data).__name__}, not an object")
    nodeid = str(data.get("nodeid", "?"))
    try:
        copy = restore_nonfinite(_deep_copy(data), data.get("nonfinite") or ())
        measured = copy.get("measurement")
        return TestRecord(
            nodeid=nodeid,
            measurement=None if measured is None else Measurement.from_dict(measured),
            baseline=None if copy.get("baseline") is None else _baseline(nodeid, copy["baseline"]),
            verdicts=tuple(_verdict(v) for v in copy.get("verdicts") or ()),
            ceiling_failures=tuple(Failure(**_known(Failure, f)) for f in copy.get("ceiling_failures") or ()),
            error=copy.get("error"),
            fingerprint=copy.get("fingerprint"),
            assertion_failed=bool(copy.get("assertion_failed", copy.get("outcome") == "failed")),
            notes=tuple(str(n) for n in copy.get("notes") or ()),
            policy=GatePolicy(**_known(GatePolicy, copy.get("policy") or {})),
            gate_changes=tuple(GateChange(**_known(GateChange, c)) for c in copy.get("gate_changes") or ()),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"test {nodeid}: {type(exc).__name__}: {exc}") from exc


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def records_from_report(report: Mapping[str, Any]) -> list[TestRecord]:
    tests = report.get("tests")
    if not isinstance(tests, list):
        raise ValueError('no "tests" list')
    return [record_from_dict(t) for t in tests]
