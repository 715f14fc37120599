"""The reports of a suite split across runners (pytest-split shards), merged into one run's report.

Each shard writes its JSON report (``--perf-report-json``); the merge reads them back into records
(``json_records.py``) and renders the Markdown exactly as an unsharded run would (``markdown.py``,
the worst detectable change over all shards in its header), then decides one exit status for the
pull request:

- ``CANNOT_MERGE`` (2) when the reports do not make one suite: a file missing or malformed, a shard
  missing or given twice, a test in two shards, shards on different hardware keys or gate settings;
- ``FAILED`` (1) when a shard's pytest session failed, a perf test failed or errored, or the gate
  changes over the union of the shards fail (a test baselined at the ref that no shard measured);
- ``PASSED`` (0) otherwise.

Pure functions over parsed data, plus ``load_shard_report`` to read a file; the CLI is ``__main__.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tfserving.gate.gate_changes import GateChangesReport, across_shards
from pytest_tfserving.report.gate_changes import markdown_section
from pytest_tfserving.report.json_records import records_from_report
from pytest_tfserving.report.json_report import REPORT_SCHEMA_VERSION
from pytest_tfserving.report.markdown import render_markdown
from pytest_tfserving.report.records import TestRecord

PASSED, FAILED, CANNOT_MERGE = 0, 1, 2
# pytest's exit statuses a shard may end with and still pass: OK, and no tests (an empty shard).
SHARD_OK = (0, 5)
_PYTEST_STATUS = {1: "tests failed", 2: "interrupted", 3: "internal error", 4: "usage error"}
RERUN = "re-run the shard with the same pytest-tfserving version and --perf-report-json"


class ShardReportError(ValueError):
    """A shard report that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class ShardReport:
    """One shard's JSON report, parsed."""

    path: str
    data: Mapping[str, Any]
    records: tuple[TestRecord, ...]
    gate: GateChangesReport | None

    @property
    def session(self) -> Mapping[str, Any]:
        return self.data["session"]

    @property
    def shard(self) -> Mapping[str, Any] | None:
        return self.session.get("shard")

    @property
    def label(self) -> str:
        shard = self.shard
        return f"shard {shard['group']}/{shard['splits']}" if shard else "unsharded run"

    @property
    def tests(self) -> list[str]:
        """The pytest node ids this shard reported (a test with named measurements once)."""
        return list(dict.fromkeys(str(t.get("test") or t.get("nodeid")) for t in self.data["tests"]))


def parse_shard_report(path: str, text: str) -> ShardReport:
    """``text`` of the file ``path`` as a shard report, or ``ShardReportError`` naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ShardReportError(f"{path}: not JSON ({exc}); pass the shard's --perf-report-json file "
                               "as it was written") from None
    if not isinstance(data, dict):
        raise ShardReportError(f"{path}: a JSON {type(data).__name__}, not a pytest-tfserving report")
    version = data.get("schema_version")
    if not isinstance(version, int) or "tests" not in data:
        raise ShardReportError(f"{path}: not a pytest-tfserving JSON report (no schema_version or "
                               "tests); pass only the shards' --perf-report-json files")
    if version > REPORT_SCHEMA_VERSION:
        raise ShardReportError(f"{path}: report schema {version} is newer than this merge reads "
                               f"({REPORT_SCHEMA_VERSION}); merge with the pytest-tfserving that wrote it")
    session = data.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("gate_settings"), dict):
        raise ShardReportError(f'{path}: no "session" facts (written by a pytest-tfserving before '
                               f"reports could be merged); {RERUN}")
    shard = session.get("shard")
    if shard is not None and not (isinstance(shard, dict) and _positive(shard.get("group"))
                                  and _positive(shard.get("splits"))):
        raise ShardReportError(f"{path}: session.shard {shard!r} is not a pytest-split group; {RERUN}")
    try:
        records = tuple(records_from_report(data))
        gate = None if data.get("gate_changes") is None else GateChangesReport.from_dict(data["gate_changes"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ShardReportError(f"{path}: malformed ({exc}); {RERUN}") from None
    return ShardReport(path, data, records, gate)


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def load_shard_report(path: Path | str) -> ShardReport:
    p = Path(path)
    if p.is_dir():
        raise ShardReportError(f"{p}: a directory; pass its report files ({p}/*.json)")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShardReportError(
            f"{p}: no such file; every shard's --perf-report-json must be downloaded before the merge "
            "(did a shard's job fail before uploading its report artifact?)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ShardReportError(f"{p}: cannot read it ({exc})") from None
    return parse_shard_report(str(p), text)


# -- can these reports be merged? ------------------------------------------------------------------
def shard_problems(reports: Sequence[ShardReport]) -> list[str]:
    """Is every shard of one split there, once? One unsharded report merges on its own."""
    if len(reports) == 1 and reports[0].shard is None:
        return []
    problems = [f"{r.path}: not a pytest-split shard (run without --splits/--group); merge the shards "
                "of one split suite only" for r in reports if r.shard is None]
    sharded = [r for r in reports if r.shard is not None]
    splits = sorted({int(r.shard["splits"]) for r in sharded if r.shard})
    if len(splits) > 1:
        problems.append("shards of different splits: " + "; ".join(f"{r.path}: {r.label}" for r in sharded)
                        + "; every shard must run with the same --splits")
    for key, what in (("algorithm", "--splitting-algorithm"), ("durations_sha256", "durations file")):
        values = {json.dumps(r.shard.get(key)) for r in sharded if r.shard}
        if len(values) > 1:
            shown = ", ".join(f"{r.path}: {r.shard.get(key)}" for r in sharded if r.shard)
            problems.append(f"the shards were split with different {what}s ({shown}): they may run a "
                            "test twice or not at all; commit one .test_durations and give every shard "
                            "the same pytest-split options")
    by_group: dict[int, list[str]] = {}
    for r in sharded:
        if r.shard:
            by_group.setdefault(int(r.shard["group"]), []).append(r.path)
    for group, paths in sorted(by_group.items()):
        if len(paths) > 1:
            problems.append(f"shard {group} is given {len(paths)} times: {', '.join(paths)} (a report "
                            "downloaded twice, or one of an older run?); pass each shard's report once")
    if len(splits) == 1:
        n = splits[0]
        for group in range(1, n + 1):
            if group not in by_group:
                problems.append(
                    f"shard {group}/{n} has no report among the files given: its job failed before "
                    "writing --perf-report-json, or its artifact was not downloaded; re-run that shard"
                )
    return problems


def duplicate_tests(reports: Sequence[ShardReport]) -> list[str]:
    """A test reported by two shards: the shards did not split one suite the same way."""
    where: dict[str, list[str]] = {}
    for r in reports:
        for test in r.tests:
            where.setdefault(test, []).append(r.path)
    return [
        f"{test} is in more than one shard ({', '.join(paths)}): the shards did not split the suite "
        "alike (the same --splits, --splitting-algorithm and .test_durations in every shard), or a "
        "report is given twice"
        for test, paths in where.items() if len(paths) > 1
    ]


def setting_problems(reports: Sequence[ShardReport]) -> list[str]:
    """Shards that would not have judged alike: other hardware, gate settings or suite."""
    problems: list[str] = []
    keyed = [(r, tuple(r.session.get("hardware_keys") or ())) for r in reports]
    keys = {k for _, k in keyed if k}
    if len(keys) > 1:
        problems.append(
            "the shards measured on different hardware (baselines are keyed per runner class by the "
            "hardware key): " + "; ".join(f"{r.path}: {' | '.join(k)}" for r, k in keyed if k)
            + "; run every shard on one runner class (runs-on labels that pick identical machines)"
        )
    settings = [(r, r.session["gate_settings"]) for r in reports]
    names = sorted({name for _, s in settings for name in s})
    for name in names:
        values = {json.dumps(s.get(name)) for _, s in settings}
        if len(values) > 1:
            shown = ", ".join(f"{r.path}: {json.dumps(s.get(name))}" for r, s in settings)
            problems.append(f"the shards were judged with different {name} ({shown}); run every "
                            "shard with the same options and ini")
    alpha = {r.session.get("alpha_tests") for r in reports}
    if len(alpha) > 1:
        shown = ", ".join(f"{r.path}: {r.session.get('alpha_tests')}" for r in reports)
        problems.append(f"the shards split different suites (--perf-alpha shared by {shown} perf "
                        "tests): run every shard on the same commit with the same paths, -m and -k")
    return problems


def merge_problems(reports: Sequence[ShardReport]) -> list[str]:
    if not reports:
        return ["no shard reports given: pass every shard's --perf-report-json file"]
    return [*shard_problems(reports), *duplicate_tests(reports), *setting_problems(reports)]


# -- the merged run --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergedRun:
    """The shards' reports as one run: its records, gate changes, and why it fails (if it does)."""

    reports: tuple[ShardReport, ...]
    records: tuple[TestRecord, ...]
    gate: GateChangesReport | None
    problems: tuple[str, ...]  # the reports do not make one suite: nothing is rendered
    failures: tuple[str, ...]  # why the pull request's check fails

    @property
    def exit_status(self) -> int:
        if self.problems:
            return CANNOT_MERGE
        return FAILED if self.failures else PASSED


def shard_failures(reports: Sequence[ShardReport]) -> list[str]:
    """Shards whose pytest session failed (a non-perf test too), by their recorded exit status."""
    lines = []
    for r in reports:
        status = r.session.get("exitstatus")
        if status is None:
            lines.append(f"{r.label} ({r.path}): its exit status was not recorded")
        elif status not in SHARD_OK:
            why = _PYTEST_STATUS.get(int(status), "")
            lines.append(f"{r.label} ({r.path}): pytest exited with status {status}"
                         + (f" ({why}; see that job's log)" if why else ""))
    return lines


def merge_reports(reports: Sequence[ShardReport], *, allow_gate_changes: bool = False) -> MergedRun:
    """One run from the shards' reports (in the order given; sort the paths for a stable table)."""
    reports = tuple(reports)
    problems = tuple(merge_problems(reports))
    records = tuple(record for r in reports for record in r.records)
    # Checked also when the reports cannot be merged: the tests that ran in no shard say what a
    # missing shard's report would have held.
    gates = [r.gate for r in reports if r.gate is not None]
    gate = None
    if gates:
        gate = across_shards(
            gates,
            allowed=allow_gate_changes,
            measured={rec.nodeid for rec in records if rec.measurement is not None},
            failed_tests={rec.nodeid for rec in records if rec.error},
        )
    failures = shard_failures(reports)
    failed = [rec for rec in records if rec.decision.failed]
    if failed:
        failures.append(f"{len(failed)} perf measurement{'s' if len(failed) != 1 else ''} failed or "
                        "errored: " + ", ".join(rec.nodeid for rec in failed[:10])
                        + (", ..." if len(failed) > 10 else ""))
    if gate is not None and gate.fails_session:
        failures.append(f"the gate changes against {gate.ref} fail (see that section)")
    return MergedRun(reports, records, gate, problems, tuple(failures))


def verdict_line(run: MergedRun) -> str:
    """One line for the log: what the merge decided and why."""
    n = len(run.reports)
    what = f"{n} shard report{'s' if n != 1 else ''}"
    if run.problems:
        lines = [f"cannot merge {what}:", *(f"  - {p}" for p in run.problems)]
        if run.gate is not None and run.gate.not_run:
            lines.append(f"  baselined at {run.gate.ref} and measured in none of these reports:")
            lines += [f"    {mid}" for mid in run.gate.not_run]
        return "\n".join(lines)
    if run.failures:
        return f"performance gate FAILED over {what}:\n" + "\n".join(f"  - {f}" for f in run.failures)
    return f"performance gate passed over {what}"


def merged_markdown(run: MergedRun, title: str = "Performance gate") -> str:
    """The unsharded run's Markdown (same table, header over all shards), its gate-changes section
    over the union of the shards, each shard's hook-added sections, then which shards were merged."""
    if run.problems:
        raise ValueError("the reports cannot be merged: " + "; ".join(run.problems))
    text = render_markdown(run.records, title)
    if run.gate is not None:
        text += "\n" + markdown_section(run.gate).rstrip() + "\n"
    for r in run.reports:
        for section in r.data.get("sections") or ():
            text += f"\n## {section['title']} ({r.label})\n\n{str(section['text']).rstrip()}\n"
    lines = ["", "### Shards", ""]
    for r in run.reports:
        status = r.session.get("exitstatus")
        n = len(r.tests)
        lines.append(f"- {r.label}: {n} perf test{'s' if n != 1 else ''}, pytest exit status {status} "
                     f"(`{Path(r.path).name}`)")
    if run.failures:
        lines += ["", "**❌ " + "; ".join(run.failures) + "**"]
    return text + "\n".join(lines) + "\n"
