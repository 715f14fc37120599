"""The "gate changes" section: how the working tree gates differently from ``--baseline-ref``.

Built once per run by the reporting process (a plain run, or the pytest-xdist controller, which has
every worker's records) from the records and the ref's list of baselines; shown in the terminal
summary and, through ``markdown_section``, in the Markdown report. The report object is kept in
``config.stash[GATE_REPORT_KEY]`` for the report writers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import pytest

from pytest_tfserving.gate.gate_changes import GateChangesReport, measured_changes, unmeasured
from pytest_tfserving.gate.gate_settings import GateChange
from pytest_tfserving.report.records import TestRecord

GATE_REPORT_KEY = pytest.StashKey[GateChangesReport]()
SHOWN = 20  # entries per informational list before "... and N more"
NOT_RUN_WHY = "renamed, re-parametrized, skipped, deselected or its measurement renamed"
ACCEPT = "a maintainer's run accepts them with --allow-gate-changes"


def report_from_records(
    records: Iterable[TestRecord],
    *,
    ref: str,
    allowed: bool,
    at_ref: Collection[str],
    collected_files: Collection[str],
    session: Sequence[GateChange] = (),
    errors: Sequence[str] = (),
    elsewhere: Collection[str] = (),
) -> GateChangesReport:
    """The session's report: per-measurement changes from the records (each judged by its test),
    and the ref's baselines that this session did not measure. ``elsewhere``: as a pytest-split
    shard, the node ids the other shards run (the merge checks those)."""
    records = list(records)
    measured = {r.nodeid for r in records if r.measurement is not None}
    failed = {r.nodeid for r in records if r.error}
    missing = unmeasured(at_ref, collected_files=collected_files, measured=measured, failed_tests=failed,
                         elsewhere=elsewhere)
    with_baseline = [(r, r.baseline) for r in records if r.measurement is not None and r.baseline is not None]
    return GateChangesReport(
        ref=ref,
        allowed=allowed,
        changes=measured_changes((r.nodeid, r.gate_changes) for r, _ in with_baseline),
        not_run=missing.not_run,
        session=tuple(session),
        errors=tuple(errors),
        not_gated=tuple(sorted(
            r.nodeid for r in records if r.measurement is not None and r.baseline is None
        )),
        unrecorded=tuple(sorted(r.nodeid for r, b in with_baseline if b.gate_settings is None)),
        not_collected=missing.not_collected,
        other_shards=missing.other_shards,
    )


def _verdict(report: GateChangesReport) -> str:
    if report.errors:
        return f"FAILED: the gate could not be checked against {report.ref}"
    if not report.loosenings:
        return f"the gate is as strict as at {report.ref}"
    n = report.loosenings
    what = f"{n} loosening{'s' if n != 1 else ''} of the gate against {report.ref}"
    if report.allowed:
        return f"{what}, accepted by --allow-gate-changes"
    return f"FAILED: {what}; the ref's settings stand ({ACCEPT})"


def _capped(items: Sequence[str]) -> list[str]:
    shown = list(items[:SHOWN])
    if len(items) > SHOWN:
        shown.append(f"... and {len(items) - SHOWN} more")
    return shown


def _where(report: GateChangesReport) -> str:
    if report.merged_shards:
        n = report.merged_shards
        return f"any of the {n} shard report{'s' if n != 1 else ''} merged"
    return "this session"


def entries(report: GateChangesReport) -> list[tuple[str, list[str]]]:
    """(heading, lines) groups in the order a reviewer needs them; empty groups left out."""
    ref = report.ref
    groups = [
        ("could not check", list(report.errors)),
        ("loosened", [
            *(f"{c.what}: {c.old} -> {c.new}" for c in report.session),
            *(f"{c.mid}: {c.change.what}: {c.change.old} -> {c.change.new}" for c in report.loosened),
            *(f"{m}: baselined at {report.ref}, not measured in {_where(report)} ({NOT_RUN_WHY})"
              for m in report.not_run),
        ]),
        ("tightened (fine)", [f"{c.mid}: {c.change.what}: {c.change.old} -> {c.change.new}"
                              for c in report.tightened]),
        (f"not gated: no baseline at {ref}", _capped(report.not_gated)),
        (f"not compared: the baseline at {ref} records no gate settings", _capped(report.unrecorded)),
        (f"baselined at {ref} in test files this session did not collect", _capped(report.not_collected)),
        (f"baselined at {ref}, run by other shards (the merge checks that one measured them)",
         _capped(report.other_shards)),
    ]
    return [(heading, lines) for heading, lines in groups if lines]


def terminal_lines(report: GateChangesReport) -> list[tuple[str, bool]]:
    """(line, red) pairs for the terminal summary: the verdict, then each group indented."""
    failing = report.fails_session or (bool(report.loosenings) and not report.allowed)
    lines = [(_verdict(report), failing)]
    for heading, items in entries(report):
        lines.append((f"{heading}:", False))
        lines += [(f"  {item}", heading == "loosened" and not report.allowed) for item in items]
    return lines


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def markdown_section(report: GateChangesReport) -> str:
    """The section for the Markdown report (and $GITHUB_STEP_SUMMARY): a heading, the verdict in
    bold, then a bullet list per group."""
    verdict = _verdict(report)
    icon = "❌ " if verdict.startswith("FAILED") else ("⚠️ " if report.loosenings else "")
    lines = [f"## Gate changes against {_code(report.ref)}", "", f"**{icon}{verdict}**", ""]
    for heading, items in entries(report):
        lines += [f"{heading}:", ""]
        for item in items:
            mid, sep, rest = item.partition(": ")
            lines.append(f"- {_code(mid)}: {rest}" if sep and "::" in mid else f"- {item}")
        lines.append("")
    return "\n".join(lines)
