"""The session's perf results and where they go: the terminal summary and the report files.

One object holds the records, baseline changes and notes of the run; ``plugin.py`` registers it as a
plugin for its terminal summary. Under pytest-xdist the controller's reporter gets every worker's
results (``xdist_roles.py``) and is the one that writes the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from pytest_tfserving.gate.baselines import Change
from pytest_tfserving.gate.gate_changes import GateChangesReport
from pytest_tfserving.options import Settings
from pytest_tfserving.report.gate_changes import GATE_REPORT_KEY, markdown_section
from pytest_tfserving.report.json_report import write_json_report
from pytest_tfserving.report.markdown import append_step_summary, render_markdown
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.session_facts import session_facts
from pytest_tfserving.report.terminal import Line, report_lines
from pytest_tfserving.shard_split import Shard

Payload = tuple[list[TestRecord], list[Change], list[str]]


class PerfReporter:
    """Records, baseline changes and notes of this process, and the reports made from them."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.records: list[TestRecord] = []
        self.baseline_changes: list[Change] = []
        self.warnings: list[str] = []
        self._sections: list[tuple[str, str]] | None = None
        # Set by the session: the perf tests --perf-alpha is shared by, and the pytest-split shard.
        self.alpha_tests = 0
        self.shard: Shard | None = None

    def payload(self) -> Payload:
        """Everything a pytest-xdist worker hands its controller."""
        return self.records, self.baseline_changes, self.warnings

    def merge(self, payload: Payload) -> None:
        records, changes, warnings = payload
        self.records += records
        self.baseline_changes += changes
        self.warnings += warnings

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.records or self.baseline_changes or self.warnings):
            return
        tr = terminalreporter
        tr.section("tfserving performance")
        if self.records:
            for spans in report_lines(self.records, width=tr._tw.fullwidth):
                tr.write_line(_marked(spans, tr._tw.markup))
        for text in self.warnings:
            tr.write_line(f"note: {text}", yellow=True)
        for change in self.baseline_changes:
            for line in change.lines():
                tr.write_line(line)
        for title, text in self._extra_sections():
            tr.write_sep("-", title)
            for line in text.splitlines():
                tr.write_line(line)
        written = [p for p in (self.settings.perf_report_md, self.settings.perf_report_json) if p]
        for path in written:
            tr.write_line(f"report written: {path}")

    def write_reports(self, exitstatus: int | None = None) -> None:
        """The Markdown (and $GITHUB_STEP_SUMMARY), JSON and PNG reports the settings ask for. A
        pytest-split shard always writes its JSON report (the merge needs every shard's)."""
        s = self.settings
        gate = self.config.stash.get(GATE_REPORT_KEY, None)  # --baseline-ref: what the PR changed
        if s.perf_report_json and self.shard is not None:
            self._write_json(gate, exitstatus)
        if not self.records and gate is None:
            return
        extra = "".join(f"\n## {title}\n\n{text.rstrip()}\n" for title, text in self._extra_sections())
        if gate is not None:
            extra = "\n" + markdown_section(gate).rstrip() + "\n" + extra
        if s.perf_report_md:
            s.perf_report_md.parent.mkdir(parents=True, exist_ok=True)
            s.perf_report_md.write_text(render_markdown(self.records) + extra)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            append_step_summary(self.records, summary)
            if extra:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(extra)
        if s.perf_report_json and self.shard is None:
            self._write_json(gate, exitstatus)
        if s.perf_report_plots:
            from pytest_tfserving.report.plots import plot_records

            plot_records(self.records, s.perf_report_plots)

    def _write_json(self, gate: GateChangesReport | None, exitstatus: int | None) -> None:
        assert self.settings.perf_report_json is not None
        facts = session_facts(self.settings, exitstatus=exitstatus, shard=self.shard,
                              alpha_tests=self.alpha_tests, records=self.records)
        write_json_report(self.records, self.settings.perf_report_json,
                          gate_changes=None if gate is None else gate.to_dict(),
                          session=facts, sections=self._extra_sections())

    def _extra_sections(self) -> list[tuple[str, str]]:
        """Sections from ``pytest_tfserving_report_sections`` implementations, asked once per run."""
        if self._sections is None:
            hook = self.config.hook.pytest_tfserving_report_sections
            self._sections = [sec for result in hook(records=list(self.records)) if result for sec in result]
        return self._sections


def _marked(line: Line, markup: Callable[..., str]) -> str:
    """A table line with its coloured spans marked up; the terminal writer leaves them plain when
    it is not a TTY (or under --color=no)."""
    return "".join(markup(text, **{colour: True}) if colour else text for text, colour in line)
