"""The results table as text that fits the terminal, grouped by test, with what each verdict could see.

What a reviewer reads first: the PR's worst detectable change (``reach``), the counts with
inconclusive results said out loud (``summary_line``), then one group per test: its full node id
(shortened only in its directories, and only when no other id could be meant; otherwise wrapped) and
its outcome, then one row per metric of each measurement. ``group_records``, ``reach`` and
``summary_line`` are shared with the Markdown and JSON reports, so all three say the same. No pytest
imports: lines come back as (text, colour) spans and ``reporter.py`` applies the terminal's markup.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pytest_tfserving.gate.baselines import summarize_run
from pytest_tfserving.gate.outcome import Finding, Status
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.report.records import TestRecord

ELLIPSIS = "…"
INDENT = "  "  # rows under their test's header
WRAP_INDENT = "    "  # continuation lines of a wrapped id
GAP = "  "
HEAD = ("", "metric", "baseline", "current", "change", "detects", "verdict")
_NUMERIC = frozenset({2, 3, 4, 5})  # right-aligned columns (indexes into HEAD)
_MIN_MEASUREMENT = 6
_MIN_METRIC = 10
_MIN_ID = 20
# Which status a group of records (a test's measurements and comparisons) shows: the worst one.
_STATUS_ORDER: tuple[Status, ...] = ("error", "failed", "inconclusive", "incomparable", "passed", "new")
_SUMMARY_ORDER: tuple[Status, ...] = ("failed", "error", "inconclusive", "incomparable", "passed", "new")
_STATUS_LABEL = {"new": "new (no baseline)"}
LEGEND = (
    "baseline, current: the values each verdict compared (the median of the window values; for a "
    "baseline with a run history, the geometric mean of its runs' medians). detects: the smallest true "
    "change the run would have caught, with 95% power (? = not estimated, - = nothing compared)."
)

Colour = str | None  # a TerminalWriter markup name ("red", "yellow", "green") or plain
Span = tuple[str, Colour]
Line = tuple[Span, ...]


# -- ids -------------------------------------------------------------------------------------------
def split_measurement_id(nodeid: str) -> tuple[str, str]:
    """(test node id, measurement name): the session names a named measurement ``<nodeid>@<name>``.

    The ``@`` is looked for after the file path and outside the parameter brackets, so a directory
    or a parameter id containing ``@`` stays part of the test id.
    """
    start = nodeid.find("::")
    if start < 0:
        return nodeid, ""
    depth = 0
    for i in range(start, len(nodeid)):
        ch = nodeid[i]
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "@" and depth == 0:
            return nodeid[:i], nodeid[i + 1 :]
    return nodeid, ""


def could_stand_for(shown: str, other: str) -> bool:
    """Could a reader take ``shown`` (with one ``…``) for ``other``? Then it is ambiguous."""
    if ELLIPSIS not in shown:
        return shown == other
    prefix, _, suffix = shown.partition(ELLIPSIS)
    return (
        len(other) > len(prefix) + len(suffix) and other.startswith(prefix) and other.endswith(suffix)
    )


def _shortenings(test_id: str) -> list[str]:
    """The id with some of its directories replaced by ``…``, most informative first.

    Only directories go: the file, the test name and its parameter id are what tells tests apart.
    """
    path, sep, rest = test_id.partition("::")
    *dirs, file = path.split("/")
    n = len(dirs)
    found = [
        ("/".join([*dirs[:head], ELLIPSIS, *dirs[n - tail :], file]) + sep + rest, tail)
        for head in range(n + 1)
        for tail in range(n - head)
    ]
    return [text for text, _ in sorted(found, key=lambda item: (-len(item[0]), -item[1]))]


# Where a wrapped id may break, best first: after a path or name separator or before a parameter id;
# then inside a parameter id; then inside a name. Never between the two colons of "::".
_BREAK_TIERS = ("/:[", "-,.@]", "_")


def _break_at(text: str, avail: int) -> int:
    """Where to end a line of at most ``avail`` characters of ``text``."""
    for tier in _BREAK_TIERS:
        cuts = [
            i if ch == "[" else i + 1
            for i, ch in enumerate(text[: avail + 1])
            if ch in tier and text[i : i + 2] != "::"
        ]
        cuts = [c for c in cuts if avail // 3 <= c <= avail]
        if cuts:
            return max(cuts)
    return avail - 1 if text[avail - 1 : avail + 1] == "::" else avail


def wrap_id(text: str, width: int) -> tuple[str, ...]:
    """``text`` in lines of at most ``width`` (continuations indented), broken where it reads best."""
    width = max(width, len(WRAP_INDENT) + 10)
    lines: list[str] = []
    rest, avail = text, width
    while len(rest) > avail:
        cut = _break_at(rest, avail)
        lines.append(rest[:cut])
        rest, avail = rest[cut:], width - len(WRAP_INDENT)
    lines.append(rest)
    return (lines[0], *(WRAP_INDENT + line for line in lines[1:]))


def display_ids(ids: Sequence[str], width: int | Mapping[str, int]) -> dict[str, tuple[str, ...]]:
    """Each id as the line(s) to print: whole when it fits; else with directories elided when that
    fits and no other id in ``ids`` could be meant; else wrapped. Never cut from the left.
    ``width``: one for all, or per id (a header line leaves room for its outcome)."""
    unique = list(dict.fromkeys(ids))
    shown: dict[str, tuple[str, ...]] = {}
    for test_id in unique:
        room = width if isinstance(width, int) else width[test_id]
        if len(test_id) <= room:
            shown[test_id] = (test_id,)
            continue
        others = [o for o in unique if o != test_id]
        short = next(
            (
                s
                for s in _shortenings(test_id)
                if len(s) <= room and not any(could_stand_for(s, o) for o in others)
            ),
            None,
        )
        shown[test_id] = (short,) if short is not None else wrap_id(test_id, room)
    return shown


def _elide(texts: Iterable[str], width: int) -> dict[str, str]:
    """Cells of one column elided in the middle to ``width``; a cell stays whole when its short form
    could be read as another cell of the column."""
    texts = list(dict.fromkeys(texts))
    out = {}
    for text in texts:
        if len(text) <= width or width < 3:
            out[text] = text
            continue
        tail = (width - 1) // 2
        short = text[: width - 1 - tail] + ELLIPSIS + text[len(text) - tail :]
        ambiguous = any(could_stand_for(short, other) for other in texts if other != text)
        out[text] = text if ambiguous else short
    return out


# -- figures ---------------------------------------------------------------------------------------
def percent(value: float) -> str:
    """0.07 -> "7%", 0.034 -> "3.4%", 0.345 -> "34%": the precision a detectable change deserves."""
    pct = abs(value) * 100
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%"


def detectable_cell(verdict: MetricVerdict | RelativeVerdict) -> str:
    """">= 7%", "none" (no finite change would be seen), "?" (not estimated), "-" (not compared)."""
    if verdict.verdict == "incomparable":
        return "-"
    d = verdict.detectable
    if d is None:
        return "?"
    return ">= " + percent(d) if math.isfinite(d) else "none"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f}%"


def _bound(v: RelativeVerdict) -> str:
    parts = [
        f"<={v.max_ratio:g}x" if v.max_ratio is not None else "",
        f">={v.min_ratio:g}x" if v.min_ratio is not None else "",
    ]
    return " ".join(p for p in parts if p)


def verdict_name(found: Finding, record_id: str) -> str:
    """How the header and summary name a verdict: "p50_ms of t.py::test@fp32"."""
    v = found.verdict
    metric = f"{v.metric} {v.label_a}/{v.label_b}" if isinstance(v, RelativeVerdict) else v.metric
    return f"{metric} of {record_id}"


# -- rows and groups -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableRow:
    """One metric of one measurement (or comparison, broken ceiling, error), already formatted."""

    measurement: str  # "@fp32" for a named measurement, "" otherwise
    metric: str
    baseline: str
    current: str
    change: str
    detectable: str
    verdict: str
    error: bool = False  # the verdict cell is an error's first line, printed across the row

    def cells(self) -> tuple[str, ...]:
        return (self.measurement, self.metric, self.baseline, self.current, self.change,
                self.detectable, self.verdict)


@dataclass(frozen=True)
class Group:
    """A test: its node id once, the worst status of its records, and all their rows."""

    test: str
    status: Status
    rows: tuple[TableRow, ...]

    @property
    def label(self) -> str:
        return _STATUS_LABEL.get(self.status, self.status)


def _finding_row(label: str, found: Finding) -> TableRow:
    v = found.verdict
    detect = detectable_cell(v)
    if isinstance(v, RelativeVerdict):
        ci = "-" if v.ci_low is None or v.ci_high is None else f"{v.ci_low:.2g}..{v.ci_high:.2g}x"
        ratio = "-" if v.ratio is None else f"{v.ratio:.3g}x"
        pair = f"{v.label_a}/{v.label_b}"  # the comparison stands where a measurement's name does
        return TableRow(pair, v.metric, _bound(v), ratio, ci, detect, found.shown)
    return TableRow(label, v.metric, _num(v.baseline), _num(v.current), _pct(v.change), detect, found.shown)


def record_table_rows(record: TestRecord) -> list[TableRow]:
    """One row per verdict and broken ceiling, or one saying why there are none; never empty."""
    _, name = split_measurement_id(record.nodeid)
    label = f"@{name}" if name else ""
    decision = record.decision
    rows: list[TableRow] = []
    if record.error:
        text = record.error.strip()
        first = text.splitlines()[0] if text else record.failure_kind
        rows.append(TableRow(label, "-", "-", "-", "-", "-", f"{record.failure_kind}: {first}", error=True))
    rows += [_finding_row(label, found) for found in decision.findings]
    for f in record.ceiling_failures:
        limit = f"{'<=' if f.bound == 'max' else '>='} {f.limit:g}"
        rows.append(TableRow(label, f.metric, limit, _num(f.actual), "-", "-", f"ceiling {f.key}"))
    # A loosened gate (--baseline-ref) is a row of its own, so a test failed by it does not read as
    # all "pass".
    loosened = "gate loosened (allowed)" if record.policy.allow_gate_changes else "fail (gate loosened)"
    rows += [TableRow(label, c.what, c.old, c.new, "-", "-", loosened)
             for c in record.gate_changes if c.looser]
    if not rows:
        current = None
        if record.measurement is not None:  # the same figure a recorded run keeps: its window median
            current = summarize_run(record.measurement, "").values.get("p50_ms", record.measurement.p50_ms)
        verdict = decision.status  # "new": the test's header says "new (no baseline)"
        rows.append(TableRow(label, "p50_ms", "-", _num(current), "-", "-", verdict))
    return rows


def group_records(records: Iterable[TestRecord]) -> list[Group]:
    """Records grouped by test, in the order the tests first appear."""
    by_test: dict[str, list[TestRecord]] = {}
    for record in records:
        by_test.setdefault(split_measurement_id(record.nodeid)[0], []).append(record)
    groups = []
    for test, members in by_test.items():
        statuses = {r.decision.status for r in members}
        status = next(s for s in _STATUS_ORDER if s in statuses)
        rows = [row for r in members for row in record_table_rows(r)]
        for i in range(len(rows) - 1, 0, -1):  # a measurement's name on its first row only
            if rows[i].measurement and rows[i].measurement == rows[i - 1].measurement:
                rows[i] = replace(rows[i], measurement="")
        groups.append(Group(test, status, tuple(rows)))
    return groups


# -- what the run could see ------------------------------------------------------------------------
@dataclass(frozen=True)
class Reach:
    """The PR's worst detectable change over every verdict, and how many said nothing about it."""

    verdicts: int
    worst: float | None  # the largest detectable change (inf: one verdict could see no change at all)
    worst_name: str | None  # "p50_ms of t.py::test@fp32"
    not_estimated: int  # judged, but its detectable change could not be estimated
    not_compared: int  # incomparable: a baseline from other hardware, nothing compared

    def line(self) -> str:
        if not self.verdicts:
            return "no verdicts: nothing was compared with a baseline or another deployment"
        tail = []
        if self.not_estimated:
            tail.append(f"{_plural(self.not_estimated, 'verdict')} could not be estimated")
        if self.not_compared:
            tail.append(f"{self.not_compared} not compared (baseline from other hardware or speed)")
        if self.worst is None:
            head = "what this run could detect could not be estimated"
            if self.not_estimated == self.verdicts:
                return f"{head} for any of its {_plural(self.verdicts, 'verdict')}"
            return "; ".join([head, *tail])
        if math.isfinite(self.worst):
            head = f"this run could detect changes of at least {percent(self.worst)} ({self.worst_name})"
        else:
            head = f"this run could not detect any change in {self.worst_name}"
        return "; ".join([head, *tail])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def reach(records: Iterable[TestRecord]) -> Reach:
    """What this run could see, over every verdict of every record."""
    verdicts = not_estimated = not_compared = 0
    worst: tuple[float, str] | None = None
    for record in records:
        for found in record.decision.findings:
            verdicts += 1
            d = found.verdict.detectable
            if found.verdict.verdict == "incomparable":
                not_compared += 1
            elif d is None:
                not_estimated += 1
            elif worst is None or abs(d) > worst[0]:
                worst = (abs(d), verdict_name(found, record.nodeid))
    return Reach(verdicts, None if worst is None else worst[0], None if worst is None else worst[1],
                 not_estimated, not_compared)


def _worst_inconclusive(records: Iterable[TestRecord]) -> str:
    """"could detect >= 40%" over the inconclusive verdicts of ``records``, or why there is none."""
    figures = [
        abs(d)
        for r in records
        for f in r.decision.findings
        if f.verdict.verdict == "inconclusive" and (d := f.verdict.detectable) is not None
    ]
    if not figures:
        return "what they could detect was not estimated"
    worst = max(figures)
    return f"could detect >= {percent(worst)}" if math.isfinite(worst) else "could detect no change"


def summary_line(records: Iterable[TestRecord]) -> str:
    """The counts by outcome, worst first; inconclusive is counted with its detectable figure and
    what it takes to make it fail, so it is never silently green."""
    records = list(records)
    by_status: dict[str, list[TestRecord]] = {}
    for r in records:
        by_status.setdefault(r.decision.status, []).append(r)
    parts = []
    for status in _SUMMARY_ORDER:
        members = by_status.get(status, [])
        if not members:
            continue
        text = f"{len(members)} {status}"
        if status == "failed":
            unsettled = [r for r in members if r.policy.inconclusive_fails and any(
                f.fails and f.verdict.verdict == "inconclusive" for f in r.decision.findings)]
            if unsettled:
                text += (f" ({len(unsettled)} of them inconclusive under --perf-inconclusive=fail, "
                         f"{_worst_inconclusive(unsettled)})")
        elif status == "inconclusive":
            text += (f" ({_worst_inconclusive(members)}; not failed: "
                     "--perf-inconclusive=fail makes them fail)")
        elif status == "incomparable":
            text += " (baseline from other hardware or speed; not failed under --perf-hardware-mismatch=warn)"
        elif status == "new":
            text += " (no baseline)"
        parts.append(text)
    return ", ".join(parts) or "no perf tests ran"


def status_colour(status: str) -> Colour:
    """Red for what failed, yellow for what could not be settled, green for what passed."""
    if status.startswith(("fail", "regression", "error", "ceiling")):
        return "red"
    if status.startswith(("inconclusive", "incomparable")):
        return "yellow"
    if status in ("pass", "passed", "improvement"):
        return "green"
    return None


def _summary_colour(records: Sequence[TestRecord]) -> Colour:
    statuses = {r.decision.status for r in records}
    for status in ("failed", "error", "inconclusive", "incomparable"):
        if status in statuses:
            return status_colour(status)
    return "green" if statuses else None


# -- the terminal table ----------------------------------------------------------------------------
def _fit(widths: list[int], width: int, has_measurement: bool) -> str:
    """The gap between columns, and ``widths`` shrunk (measurement, then metric, by middle elision)
    until a row fits ``width``: narrower gaps first, since elided names read worse."""
    gap = GAP
    overflow = len(INDENT) + sum(widths) + len(gap) * (len(widths) - 1) - width
    if overflow > 0:
        gap = " "
        overflow -= len(widths) - 1
    shrinkable = ([(0, _MIN_MEASUREMENT)] if has_measurement else []) + [
        (1 if has_measurement else 0, _MIN_METRIC)
    ]
    for col, minimum in shrinkable:
        if overflow <= 0:
            break
        cut = min(overflow, max(0, widths[col] - minimum))
        widths[col] -= cut
        overflow -= cut
    return gap


def table_lines(records: Iterable[TestRecord], width: int = 100) -> list[Line]:
    """The grouped table: a column header, then per test its id and outcome and its rows."""
    groups = group_records(records)
    if not groups:
        return []
    has_measurement = any(row.measurement for g in groups for row in g.rows)
    first = 0 if has_measurement else 1
    head = HEAD[first:]
    body = [row.cells()[first:] for g in groups for row in g.rows if not row.error]
    cells = [head, *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    gap = _fit(widths, width, has_measurement)
    shorten = [_elide((row[i] for row in body), widths[i]) if i < 2 - first else {} for i in range(len(head))]

    def row_text(row: tuple[str, ...]) -> tuple[str, str]:
        parts = []
        for col, text in enumerate(row[:-1]):
            text = shorten[col].get(text, text)
            parts.append(text.rjust(widths[col]) if col + first in _NUMERIC else text.ljust(widths[col]))
        return INDENT + gap.join(parts) + gap, row[-1]

    ids = display_ids([g.test for g in groups], max(_MIN_ID, width))
    prefix, last = row_text(head)
    lines: list[Line] = [(((prefix + last).rstrip(), None),)]
    lines.append((("-" * min(width, len(prefix) + widths[-1]), None),))
    for g in groups:
        *wrapped, tail = ids[g.test]
        lines += [((text, None),) for text in wrapped]
        if len(tail) + len(GAP) + len(g.label) <= width:  # the outcome beside the id when it fits;
            lines.append(((tail + GAP, None), (g.label, status_colour(g.status))))
        else:  # an id is never shortened to make room for it: the rows say it too
            lines.append(((tail, None),))
        for row in g.rows:
            if row.error:
                text = INDENT + (row.measurement + GAP if row.measurement else "") + row.verdict
                if len(text) > width:
                    text = text[: width - 1] + ELLIPSIS
                lines.append(((text, "red"),))
            else:
                before, verdict = row_text(row.cells()[first:])
                lines.append(((before, None), (verdict, status_colour(verdict))))
    return lines


def _wrapped(text: str, width: int, colour: Colour = None) -> list[Line]:
    """Prose wrapped at spaces only, so a node id in it is never split."""
    chunks = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    return [((chunk, colour),) for chunk in chunks]


def report_lines(records: Sequence[TestRecord], width: int = 100) -> list[Line]:
    """The terminal section: what the run could see, the counts, the table and what its columns mean."""
    if not records:
        return []
    return [
        *_wrapped(reach(records).line(), width),
        *_wrapped(summary_line(records), width, _summary_colour(records)),
        (("", None),),
        *table_lines(records, width),
        (("", None),),
        *_wrapped(LEGEND, width),
    ]


def plain(line: Line) -> str:
    return "".join(text for text, _ in line)


def format_table(records: Iterable[TestRecord], width: int = 100) -> list[str]:
    """The grouped table as plain lines no wider than ``width`` (unless an id cannot be split)."""
    return [plain(line) for line in table_lines(records, width)]


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
