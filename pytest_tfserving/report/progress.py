"""Live progress in pytest's terminal while a perf test measures (not swallowed by output capture).

On a terminal one line is rewritten in place; in a CI log (no TTY) plain lines are written, at
most one window line every ``PLAIN_EVERY_S`` seconds besides every phase change. ``-q`` keeps it
quiet, and so do pytest-xdist workers (their output does not reach the terminal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_tfserving.load.results import WindowSummary
from pytest_tfserving.perf.progress import Progress, Silent, window_text

PLAIN_EVERY_S = 5.0


class TerminalProgress:
    """Progress of one test's measurements, written above pytest's own output."""

    def __init__(
        self, config: pytest.Config, nodeid: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._terminal: Any = config.pluginmanager.get_plugin("terminalreporter")
        self._capture: Any = config.pluginmanager.get_plugin("capturemanager")
        self._nodeid = nodeid
        self._clock = clock
        self._started = clock()
        self._tty = bool(self._terminal is not None and self._terminal.isatty)
        self._last_plain = -PLAIN_EVERY_S
        self._open = False  # a line is being rewritten in place (TTY)

    def phase(self, text: str) -> None:
        self._emit(text, force=True)

    def window(self, label: str, index: int, total: int, summary: WindowSummary) -> None:
        self._emit(window_text(label, index, total, summary), force=index == total)

    def done(self, text: str) -> None:
        self._emit(text, force=True)
        if self._open:
            self._write(lambda tr: tr.write_line(""))
            self._open = False

    def _emit(self, text: str, *, force: bool) -> None:
        now = self._clock()
        line = f"  {self._nodeid} [{now - self._started:5.1f} s] {text}"
        if self._tty:
            def rewrite(tr: Any) -> None:
                if not self._open:
                    tr.write_line("")  # leave pytest's own line ("test_x.py ") as it is
                tr.rewrite(line[: tr._tw.fullwidth - 1], erase=True)

            self._write(rewrite)
            self._open = True
        elif force or now - self._last_plain >= PLAIN_EVERY_S:
            self._write(lambda tr: tr.write_line(line))
            self._last_plain = now

    def _write(self, action: Callable[[Any], None]) -> None:
        if self._capture is None:
            action(self._terminal)
            return
        with self._capture.global_and_fixture_disabled():
            action(self._terminal)


def progress_for(config: pytest.Config, nodeid: str) -> Progress:
    """The terminal's progress for this test, or silence (-q, xdist worker, no terminal)."""
    quiet = config.get_verbosity() < 0 or hasattr(config, "workerinput")
    if quiet or config.pluginmanager.get_plugin("terminalreporter") is None:
        return Silent()
    return TerminalProgress(config, nodeid)
