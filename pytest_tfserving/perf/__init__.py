"""The ``perf`` fixture's handle and the measuring loops behind it."""

from __future__ import annotations

from pytest_tfserving.perf.handle import PerfContext, PerfHandle, Recorded

__all__ = ["PerfContext", "PerfHandle", "Recorded"]
