"""The results table as plain text lines that fit the terminal (pytest's terminal summary prints them)."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_tfserving.report.records import COLUMNS, Row, TestRecord, record_rows

_MIN_TEST = 12
_MIN_METRIC = 8


def _clip_left(text: str, width: int) -> str:
    """Keep the end of a node id: the test name and parameters say more than the directory."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _clip_right(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(records: Iterable[TestRecord], width: int = 100) -> list[str]:
    """Lines of a table (test, metric, baseline, current, change, verdict) no wider than ``width``."""
    rows: list[Row] = [r for record in records for r in record_rows(record)]
    if not rows:
        return []
    cells = [list(COLUMNS)] + [[r.test, r.metric, r.baseline, r.current, r.change, r.verdict] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    gap = 2
    overflow = sum(widths) + gap * (len(widths) - 1) - width
    for col, minimum in ((0, _MIN_TEST), (1, _MIN_METRIC), (5, len("verdict"))):
        if overflow <= 0:
            break
        cut = min(overflow, max(0, widths[col] - minimum))
        widths[col] -= cut
        overflow -= cut
    lines = []
    for i, row in enumerate(cells):
        parts = []
        for col, (text, w) in enumerate(zip(row, widths, strict=True)):
            text = _clip_left(text, w) if col == 0 else _clip_right(text, w)
            parts.append(text.rjust(w) if col in (2, 3, 4) else text.ljust(w))
        lines.append((" " * gap).join(parts).rstrip())
        if i == 0:
            lines.append("-" * min(width, sum(widths) + gap * (len(widths) - 1)))
    return lines


def format_details(records: Iterable[TestRecord]) -> list[str]:
    """One explanatory line per verdict that is not a plain pass, per broken ceiling and per error."""
    lines: list[str] = []
    for record in records:
        notes = [f.message for f in record.decision.findings if f.verdict.verdict != "pass"]
        notes += [f.message() for f in record.ceiling_failures]
        if record.error:
            notes.append(record.error.strip())
        lines += [f"{record.nodeid}: {note}" for note in notes]
    return lines
