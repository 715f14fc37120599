"""Machine-readable results for CI tooling: per test its measurement, baseline summary, verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_tfserving.gate.baselines import json_safe
from pytest_tfserving.gate.verdicts import RelativeVerdict
from pytest_tfserving.report.records import TestRecord

REPORT_SCHEMA_VERSION = 1


def record_to_dict(record: TestRecord) -> dict[str, Any]:
    decision = record.decision
    verdicts = []
    for found in decision.findings:
        data = asdict(found.verdict)
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
    return {
        "nodeid": record.nodeid,
        "outcome": decision.status,
        "error": record.error,
        "measurement": None if record.measurement is None else record.measurement.to_dict(),
        "baseline": baseline,
        "verdicts": verdicts,
        "ceiling_failures": [{**asdict(f), "message": f.message()} for f in record.ceiling_failures],
        "fingerprint": None if record.fingerprint is None else dict(record.fingerprint),
    }


def build_json_report(
    records: Iterable[TestRecord], fingerprint: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The whole report as JSON-safe data (NaN/inf become null)."""
    tests = [record_to_dict(r) for r in records]
    outcomes: dict[str, int] = {}
    for t in tests:
        outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "fingerprint": dict(fingerprint or {}),
        "summary": dict(sorted(outcomes.items())),
        "tests": tests,
    }
    safe: dict[str, Any] = json_safe(report)
    return safe


def write_json_report(
    records: Iterable[TestRecord], path: Path | str, fingerprint: Mapping[str, Any] | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build_json_report(records, fingerprint), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
