"""The results as Markdown, for a PR comment or the GitHub Actions job summary.

The same content as the terminal section (``terminal.py`` builds it): the counts, what the run could
detect, one group of rows per test, then the details reviewers need for anything not passing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_tfserving.gate.fingerprint import compare_fingerprints
from pytest_tfserving.gate.outcome import Finding
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import LEGEND, detectable_cell, group_records, reach, summary_line

_ICONS = {
    "regression": "❌ regression",
    "fail": "❌ fail",
    "improvement": "✅ improvement",
    "pass": "pass",
    "inconclusive": "⚠️ inconclusive",
    "incomparable": "⚠️ incomparable",
}
_COLUMNS = ("test", "measurement", "metric", "baseline", "current", "change", "detects", "verdict")
_ALIGN = ("---", "---", "---", "---:", "---:", "---:", "---:", "---")


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _verdict(text: str) -> str:
    if text in _ICONS:
        return _ICONS[text]
    # "fail (inconclusive)": an unsettled claim failed; a broken ceiling; an error or failed assertion
    return "❌ " + text if text.startswith(("ceiling", "fail", "error")) else text


def _note(found: Finding) -> str:
    """The verdict's message, with what it could have detected where the judge estimated it."""
    cell = detectable_cell(found.verdict)
    return found.message + (f" (this run could detect {cell})" if cell.startswith(">=") else "")


def render_markdown(records: Iterable[TestRecord], title: str = "Performance gate") -> str:
    """A summary line, what the run could detect, the grouped results table, then the details."""
    records = list(records)
    lines = [f"## {title}", "", f"**{_cell(summary_line(records))}**", ""]
    groups = group_records(records)
    if groups:
        lines += [_cell(reach(records).line()), ""]
        named = any(row.measurement for g in groups for row in g.rows)
        keep = [i for i in range(len(_COLUMNS)) if i != 1 or named]  # no measurement column if unnamed
        lines += ["| " + " | ".join(_COLUMNS[i] for i in keep) + " |"]
        lines += ["|" + "|".join(_ALIGN[i] for i in keep) + "|"]
        for group in groups:
            for n, row in enumerate(group.rows):
                test = f"`{group.test}`" if n == 0 else ""
                cells = (test, row.measurement, *row.cells()[1:-1], _verdict(row.verdict))
                lines.append("| " + " | ".join(_cell(cells[i]) for i in keep) + " |")
        lines += ["", f"<sub>{_cell(LEGEND)}</sub>", ""]
    details: list[str] = []
    for r in records:
        decision = r.decision
        notes = [_note(f) for f in decision.findings if f.verdict.verdict != "pass"]
        notes += [f"ceiling broken: {f.message()}" for f in r.ceiling_failures]
        if r.baseline is not None and r.fingerprint:
            diffs = compare_fingerprints(r.baseline.fingerprint, r.fingerprint)
            if diffs:
                notes.append("environment differs from the baseline: " + "; ".join(diffs))
        if r.error:
            notes.append(f"{r.failure_kind}:\n\n```\n" + r.error.strip() + "\n```")
        if notes:
            details.append(f"<details><summary><code>{r.nodeid}</code>: {decision.status}</summary>\n")
            details += [f"- {n}" for n in notes]
            details.append("\n</details>")
    if details:
        lines += ["### Details", "", *details, ""]
    return "\n".join(lines) + "\n"


def append_step_summary(
    records: Iterable[TestRecord], path: Path | str, title: str = "Performance gate"
) -> Path:
    """Append to ``path`` (pass ``os.environ["GITHUB_STEP_SUMMARY"]``); earlier steps' content is kept."""
    path = Path(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(render_markdown(records, title))
    return path
