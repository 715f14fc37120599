"""Machine-readable results for CI tooling: per test its measurement, baseline summary, verdicts.

Keys are only ever added (other tools read them): each verdict carries ``detectable`` (the smallest
true relative change it would have caught with 95 % power; null when not estimated), each test its
``test`` id and ``measurement_name``, and the report the PR's worst detectable change
(``detectable``) and the summary line the terminal prints (``summary_text``).

So that ``python -m pytest_tfserving.report merge`` can read shards' reports back into records
(``json_records.py``) and render them as one run, each test also carries what its outcome was
decided with (``assertion_failed``, ``notes``, ``policy``, ``gate_changes``) and where JSON's null
stood for an infinity or NaN (``nonfinite``), and the report the session's facts (``session``: exit
status, pytest-split shard, hardware keys, gate settings) and the hook-added ``sections``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_tfserving.gate.baselines import json_safe
from pytest_tfserving.gate.verdicts import RelativeVerdict
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import reach, split_measurement_id, summary_line

REPORT_SCHEMA_VERSION = 1


def record_to_dict(record: TestRecord) -> dict[str, Any]:
    decision = record.decision
    verdicts = []
    for found in decision.findings:
        data = asdict(found.verdict)
        data["detectable"] = found.verdict.detectable  # relative, e.g. 0.07; None: not estimated
        data["kind"] = "relative" if isinstance(found.verdict, RelativeVerdict) else "baseline"
        data["message"] = found.message
        data["fails"] = found.fails  # what the gate made of it (outcome.py), beside the verdict itself
        verdicts.append(data)
    baseline = None
    if record.baseline is not None:
        baseline = {
            "source": record.baseline.source,
            "created": record.baseline.created,
            "fingerprint": record.baseline.fingerprint,
            "measurement": record.baseline.measurement.to_dict(),
            "runs": [run.to_dict() for run in record.baseline.history],
        }
    test, name = split_measurement_id(record.nodeid)
    data = {
        "nodeid": record.nodeid,
        "test": test,  # the pytest node id; ``nodeid`` adds "@name" for a named measurement
        "measurement_name": name or None,
        "outcome": decision.status,
        "error": record.error,
        "measurement": None if record.measurement is None else record.measurement.to_dict(),
        "baseline": baseline,
        "verdicts": verdicts,
        "ceiling_failures": [{**asdict(f), "message": f.message()} for f in record.ceiling_failures],
        "fingerprint": None if record.fingerprint is None else dict(record.fingerprint),
        "assertion_failed": record.assertion_failed,
        "notes": list(record.notes),
        "policy": asdict(record.policy),
        "gate_changes": [asdict(c) for c in record.gate_changes],
    }
    data["nonfinite"] = nonfinite_paths(data)
    return data


def nonfinite_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Where ``value`` holds an infinity or NaN (JSON writes null there): the key path and the value
    as text ("inf", "-inf", "nan"), so a reader can restore them (a detectable change of inf means
    "no change could be seen", null means "not estimated")."""
    if isinstance(value, float) and not math.isfinite(value):
        return [{"path": list(path), "value": str(value)}]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in nonfinite_paths(v, (*path, k))]
    if isinstance(value, (list, tuple)):
        return [found for i, v in enumerate(value) for found in nonfinite_paths(v, (*path, i))]
    return []


def _reach(records: list[TestRecord]) -> dict[str, Any]:
    """The header figure: the largest detectable change over every verdict, and which one it is."""
    r = reach(records)
    return {
        "worst": r.worst,
        "worst_verdict": r.worst_name,
        "verdicts": r.verdicts,
        "not_estimated": r.not_estimated,
        "not_compared": r.not_compared,
        "text": r.line(),
    }


def build_json_report(
    records: Iterable[TestRecord],
    fingerprint: Mapping[str, Any] | None = None,
    gate_changes: Mapping[str, Any] | None = None,
    session: Mapping[str, Any] | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The whole report as JSON-safe data (NaN/inf become null). ``session``: ``session_facts``."""
    records = list(records)
    tests = [record_to_dict(r) for r in records]
    outcomes: dict[str, int] = {}
    for t in tests:
        outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "fingerprint": dict(fingerprint or {}),
        "summary": dict(sorted(outcomes.items())),
        "summary_text": summary_line(records),
        "detectable": _reach(records),
        "tests": tests,
        **({"gate_changes": dict(gate_changes)} if gate_changes is not None else {}),
        **({"session": dict(session)} if session is not None else {}),
        "sections": [{"title": title, "text": text} for title, text in sections],
    }
    safe: dict[str, Any] = json_safe(report)
    return safe


def write_json_report(
    records: Iterable[TestRecord],
    path: Path | str,
    fingerprint: Mapping[str, Any] | None = None,
    gate_changes: Mapping[str, Any] | None = None,
    session: Mapping[str, Any] | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = build_json_report(records, fingerprint, gate_changes, session, sections)
    text = json.dumps(report, indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
