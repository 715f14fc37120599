"""Extension points of pytest-tfserving, for conftest.py files and other plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_tfserving.report.records import TestRecord


@pytest.hookspec
def pytest_tfserving_report_sections(records: list[TestRecord]) -> list[tuple[str, str]] | None:
    """Extra report sections as ``(title, markdown_text)`` pairs, built from the session's perf records.

    Each section is printed in the terminal summary and appended to the Markdown report
    (``--perf-report-md`` and ``$GITHUB_STEP_SUMMARY``). ``records`` are in the order tests finished;
    ``record.nodeid`` carries ``@name`` for named measurements.
    """
