"""The two roles of a process under pytest-xdist, as plugin objects: one is registered per process.

A worker ships its perf results to the controller in ``workeroutput``; the controller (or a plain,
non-distributed run) takes them over as workers go down and writes the reports once for the run.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from pytest_tfserving.report.reporter import PerfReporter

WORKER_OUTPUT_KEY = "pytest_tfserving_results"


class WorkerRole:
    """A pytest-xdist worker: the controller reports for all workers, so hand the results over."""

    def __init__(self, config: pytest.Config, reporter: PerfReporter) -> None:
        self.config = config
        self.reporter = reporter

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        workeroutput: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
        workeroutput[WORKER_OUTPUT_KEY] = pickle.dumps(self.reporter.payload())


class ControllerRole:
    """The process that reports: a plain run, or the pytest-xdist controller merging its workers."""

    def __init__(self, reporter: PerfReporter) -> None:
        self.reporter = reporter

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Take over a finished worker's results, once, for the reports."""
        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if data:
            self.reporter.merge(pickle.loads(data))  # our own worker, same code and machine

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.reporter.write_reports(exitstatus)


def role_for(config: pytest.Config, reporter: PerfReporter) -> WorkerRole | ControllerRole:
    """A worker has ``config.workeroutput`` (set by pytest-xdist before configure); anything else reports."""
    if hasattr(config, "workeroutput"):
        return WorkerRole(config, reporter)
    return ControllerRole(reporter)
