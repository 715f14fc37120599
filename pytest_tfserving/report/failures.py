"""The plugin's own errors as a user reads them: what is wrong, which file, the fix, and the test line
that called in. A traceback through the plugin's frames shows only where the plugin noticed the
problem, so these errors fail the test with their message alone (``plugin.py`` raises them as
``pytest.fail(..., pytrace=False)``; ``--full-trace`` keeps the traceback for debugging the plugin).
No pytest imports.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from pytest_tfserving.gate.baselines import BaselineError
from pytest_tfserving.gate.deployments import StoreEntryChanged
from pytest_tfserving.load.single_request import BenchmarkDisabled, RequestFailed
from pytest_tfserving.process.errors import BackendError

# Errors whose message already says what is wrong and how to fix it: a broken baseline file, a
# server or Redis that crashed or never got ready (with its log), a rewritten deployment store.
EXPLAINED_ERRORS: tuple[type[BaseException], ...] = (
    BaselineError,
    BackendError,
    StoreEntryChanged,
    BenchmarkDisabled,
    RequestFailed,
)


def is_explained(exc: BaseException) -> bool:
    return isinstance(exc, EXPLAINED_ERRORS)


def under_root(text: str, rootdir: Path) -> str:
    """``text`` with paths inside ``rootdir`` written relative to it, as pytest writes node ids."""
    return text.replace(f"{rootdir}{os.sep}", "")


def error_line(exc: BaseException, rootdir: Path) -> str:
    """``Type: message``, paths under ``rootdir`` relative: the report's error text for ``exc``."""
    return under_root(f"{type(exc).__name__}: {exc}", rootdir)


def calling_line(exc: BaseException, test_file: Path, rootdir: Path) -> str | None:
    """``file:line`` of the last frame of ``exc``'s traceback in the test's own file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == test_file]
    if not frames:
        return None
    return under_root(f"{frames[-1].filename}:{frames[-1].lineno}", rootdir)


def failure_text(exc: BaseException, *, test_file: Path, rootdir: Path) -> str:
    """What the failed test shows in place of a traceback."""
    text = error_line(exc, rootdir)
    where = calling_line(exc, test_file, rootdir)
    return text if where is None else f"{text}\n(raised at {where})"
