"""Which perf tests a session runs: none unless the user asks, so a plain ``pytest`` in a repository
that adopts the plugin runs its quick tests and does not spend minutes measuring.

Asking is a ``-m`` expression that names ``perf`` (``-m perf`` runs them; ``-m "not perf"`` is the
user's own decision too), ``--perf``, or ini ``tfserving_perf = true``. Deselected perf tests count
in pytest's "deselected" figure, and the terminal summary says how to run them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_tfserving.session import is_perf_test

PERF_MARKER = "perf"
# What a pytest-xdist worker deselected, for the controller's summary line.
DESELECTED_OUTPUT_KEY = "pytest_tfserving_perf_deselected"

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
# An identifier of pytest's marker expressions (``_pytest/mark/expression.py``).
_IDENT = re.compile(r"(?:\w|:|\+|-|\.|\[|\]|\\|/)+")


def mentions_perf(markexpr: str) -> bool:
    """Whether a ``-m`` expression names the perf marker (a quoted argument of another marker,
    ``-m "slow(reason='perf')"``, does not)."""
    return PERF_MARKER in _IDENT.findall(_QUOTED.sub(" ", markexpr))


def deselected_line(count: int) -> str:
    tests = "test" if count == 1 else "tests"
    return f"{count} perf {tests} deselected: run pytest -m perf"


class PerfSelection:
    """Registered as a plugin by ``plugin.py``; deselects perf tests the session was not asked to run."""

    def __init__(self, config: pytest.Config, *, opted_in: bool) -> None:
        self.config = config
        self.opted_in = opted_in
        self.deselected = 0

    def asked_for_perf(self) -> bool:
        return self.opted_in or mentions_perf(self.config.option.markexpr or "")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """After ``-m``/``-k`` deselection (trylast), so only the perf tests those left are counted."""
        if self.asked_for_perf():
            return
        keep = [item for item in items if not is_perf_test(item)]
        dropped = [item for item in items if is_perf_test(item)]
        if dropped:
            items[:] = keep
            config.hook.pytest_deselected(items=dropped)
        self.deselected = len(dropped)
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[DESELECTED_OUTPUT_KEY] = self.deselected

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """The pytest-xdist controller collects nothing itself: take the workers' count (all collect
        the same items)."""
        count = getattr(node, "workeroutput", {}).get(DESELECTED_OUTPUT_KEY, 0)
        self.deselected = max(self.deselected, int(count))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.deselected and not hasattr(self.config, "workeroutput"):
            terminalreporter.write_line(deselected_line(self.deselected), yellow=True, bold=True)
