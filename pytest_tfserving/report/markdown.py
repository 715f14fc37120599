"""The results as Markdown, for a PR comment or the GitHub Actions job summary."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_tfserving.gate.fingerprint import compare_fingerprints
from pytest_tfserving.report.records import COLUMNS, TestRecord, record_rows

_ICONS = {
    "regression": "❌ regression",
    "fail": "❌ fail",
    "improvement": "✅ improvement",
    "pass": "pass",
    "inconclusive": "⚠️ inconclusive",
    "incomparable": "⚠️ incomparable",
}


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(records: Iterable[TestRecord], title: str = "Performance gate") -> str:
    """A summary line, the results table, then the details reviewers need for anything not passing."""
    records = list(records)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no perf tests ran"
    lines = [f"## {title}", "", f"**{summary}**", ""]
    rows = [row for r in records for row in record_rows(r)]
    if rows:
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---:|" * 3 + "---|"]
        for row in rows:
            verdict = _ICONS.get(row.verdict, row.verdict)
            if verdict.startswith(("ceiling", "fail (")):  # "fail (inconclusive)": an unsettled claim failed
                verdict = "❌ " + verdict
            cells = (f"`{row.test}`", row.metric, row.baseline, row.current, row.change, verdict)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    details: list[str] = []
    for r in records:
        decision = r.decision
        notes = [f.message for f in decision.findings if f.verdict.verdict != "pass"]
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
