"""What a measurement tells whoever watches it: the phase it is in and each window as it finishes.

The handle reports through this small interface; the session hands it the terminal's
implementation (``report/progress.py``), tests and scripts get ``Silent``. No pytest imports.
"""

from __future__ import annotations

from typing import Protocol

from pytest_tfserving.load.results import WindowSummary


class Progress(Protocol):
    def phase(self, text: str) -> None:
        """A new phase: "warm-up 2 s", "verdict unsettled: 3 more windows", ..."""

    def window(self, label: str, index: int, total: int, summary: WindowSummary) -> None:
        """Window ``index`` (1-based) of at most ``total`` finished for ``label`` (a side or a run)."""

    def done(self, text: str) -> None:
        """The measurement ended; ``text`` sums it up."""


class Silent:
    """Reports nothing: the default outside a pytest session."""

    def phase(self, text: str) -> None:
        pass

    def window(self, label: str, index: int, total: int, summary: WindowSummary) -> None:
        pass

    def done(self, text: str) -> None:
        pass


def window_text(label: str, index: int, total: int, summary: WindowSummary) -> str:
    """``measure: window 4/<=20  p50 1.02 ms  690 req/s``: one window as a progress line."""
    prefix = f"{label}: " if label else ""
    errors = f"  {summary.errors} errors" if summary.errors else ""
    return (f"{prefix}window {index}/<={total}  p50 {summary.p50_ms:.3g} ms  "
            f"{summary.rps:.4g} req/s{errors}")
