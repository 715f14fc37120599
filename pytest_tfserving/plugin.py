"""pytest11 entry point: options, markers and hook wiring. Behaviour lives in the modules it calls."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_tfserving import fixtures as _fixtures
from pytest_tfserving.gate.ceilings import CeilingError, parse_perf_marker
from pytest_tfserving.options import add_options, resolve_settings
from pytest_tfserving.session import SESSION_KEY, TfservingSession
from pytest_tfserving.xdist_roles import role_for

PERF_MARKER_HELP = (
    "perf(**ceilings): a performance test, selected with `pytest -m perf`. Ceilings hold whatever "
    "the baseline says, e.g. perf(p99_ms=250, min_rps=50, max_error_rate=0, max_cpu_percent=90, "
    "max_rss_mb=4000); tolerance=0.1 or tolerances={'p50_ms': 0.05} tune the baseline gate."
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_tfserving import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", PERF_MARKER_HELP)
    config.pluginmanager.register(_fixtures, "tfserving-fixtures")
    if getattr(config.option, "help", False) or getattr(config.option, "markers", False):
        return
    session = TfservingSession(config, resolve_settings(config))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "tfserving-session")
    config.pluginmanager.register(session.reporter, "tfserving-reporter")
    # A pytest-xdist worker ships its results; the controller (or a plain run) writes the reports.
    config.pluginmanager.register(role_for(config, session.reporter), "tfserving-xdist-role")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reject bad perf markers before anything starts, naming the test and the valid keys."""
    for item in items:
        marker = item.get_closest_marker("perf")
        if marker is None:
            continue
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.perf takes keyword arguments only, got {marker.args!r}"
            )
        try:
            parse_perf_marker(marker.kwargs)
        except CeilingError as exc:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.perf: {exc}") from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Perf tests run one at a time across xdist workers; their verdicts fail the test's call phase."""
    session = item.config.stash.get(SESSION_KEY, None)
    if session is None or item.get_closest_marker("perf") is None:
        return (yield)
    with session.exclusive_perf_lock():
        try:
            result = yield
        except (pytest.skip.Exception, pytest.xfail.Exception):
            raise  # an outcome the test chose, not an error of the measurement
        except BaseException as exc:
            session.record_error(item, exc)
            raise
    session.judge_test(item)
    return result
