"""``python -m pytest_tfserving.report merge reports/*.json``: the shards' JSON reports as one Markdown
report and one exit status (0 passed, 1 failed, 2 the reports cannot be merged); see shard_merge.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_tfserving.report.shard_merge import (
    CANNOT_MERGE,
    ShardReportError,
    load_shard_report,
    merge_reports,
    merged_markdown,
    verdict_line,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_tfserving.report")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge",
        help="merge pytest-split shards' --perf-report-json files into one report and exit status",
        description="Merge the JSON reports of a perf suite split across runners with pytest-split "
        "into one Markdown report and one exit status: 0 passed; 1 a shard failed, a perf test failed "
        "or a test baselined at --baseline-ref ran in no shard; 2 the reports cannot be merged "
        "(missing or malformed file, missing or repeated shard, a test in two shards, different "
        "hardware keys or gate settings). The Markdown is also appended to $GITHUB_STEP_SUMMARY.",
    )
    merge.add_argument("reports", nargs="+", type=Path, help="every shard's --perf-report-json file")
    merge.add_argument("-o", "--output", type=Path, default=None,
                       help="write the Markdown here (default: standard output)")
    merge.add_argument("--allow-gate-changes", action="store_true",
                       help="accept tests baselined at --baseline-ref that no shard measured (a "
                       "maintainer's decision, like the plugin's --allow-gate-changes)")
    merge.add_argument("--title", default="Performance gate", help="the report's heading")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = sorted(args.reports)
    if args.output is not None and any(args.output.resolve() == p.resolve() for p in paths):
        print(f"error: --output {args.output} is one of the shard reports; write the Markdown "
              "elsewhere", file=sys.stderr)
        return CANNOT_MERGE
    reports, errors = [], []
    for path in paths:
        try:
            reports.append(load_shard_report(path))
        except ShardReportError as exc:
            errors.append(str(exc))
    if errors:
        print("cannot merge: nothing written\n" + "\n".join(f"  - {e}" for e in errors), file=sys.stderr)
        return CANNOT_MERGE
    run = merge_reports(reports, allow_gate_changes=args.allow_gate_changes)
    if run.problems:
        print(verdict_line(run) + "\nnothing written", file=sys.stderr)
        return run.exit_status
    text = merged_markdown(run, args.title)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(text)
    print(verdict_line(run), file=sys.stderr)
    return run.exit_status


if __name__ == "__main__":
    sys.exit(main())
