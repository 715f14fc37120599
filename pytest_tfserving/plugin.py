"""pytest11 entry point: options, markers and hook wiring. Behaviour lives in the modules it calls."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from pytest_tfserving import fixtures as _fixtures
from pytest_tfserving.gate.ceilings import CeilingError, parse_perf_marker
from pytest_tfserving.needed_extras import missing_for_settings, missing_for_tests, uses_gpu_metrics
from pytest_tfserving.options import add_options, resolve_settings
from pytest_tfserving.report.failures import failure_text, is_explained
from pytest_tfserving.selection import PerfSelection
from pytest_tfserving.session import SESSION_KEY, TfservingSession
from pytest_tfserving.xdist_roles import role_for

# Registered with this module, before pytest-split's plugin: its trylast hook must run just before
# pytest-split's (shard_split.py says why).
pytest_plugins = ("pytest_tfserving.shard_split",)

PERF_MARKER_HELP = (
    "perf(**ceilings): a performance test, selected with `pytest -m perf` or --perf (a plain run "
    "deselects it). Ceilings hold whatever "
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
    settings = resolve_settings(config)
    missing = missing_for_settings(settings)
    if missing:
        raise pytest.UsageError("\n".join(missing))
    session = TfservingSession(config, settings)
    config.stash[SESSION_KEY] = session
    selection = PerfSelection(config, opted_in=settings.tfserving_perf)
    config.pluginmanager.register(selection, "tfserving-selection")
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the selected perf tests need (GPU ceilings need NVML) is checked before any test runs."""
    missing = missing_for_tests([item.nodeid for item in session.items if _gpu_metrics(item)])
    if missing:
        raise pytest.UsageError("\n".join(missing))


def _gpu_metrics(item: pytest.Item) -> bool:
    """A selected test with a GPU ceiling or gated GPU metric (pytest calls collection_finish even
    after a bad marker stopped the collection: that test's usage error is already on its way)."""
    marker = item.get_closest_marker("perf")
    try:
        return marker is not None and uses_gpu_metrics(parse_perf_marker(marker.kwargs))
    except CeilingError:
        return False


@contextlib.contextmanager
def _plain_failures(item: pytest.Item) -> Iterator[None]:
    """The plugin's explained errors (a broken baseline, a crashed server) fail with their message,
    without a traceback through the plugin's frames; ``--full-trace`` keeps it."""
    try:
        yield
    except BaseException as exc:
        if not is_explained(exc) or item.config.option.fulltrace:
            raise
        text = failure_text(exc, test_file=Path(item.path), rootdir=Path(item.config.rootpath))
        raise pytest.fail.Exception(text, pytrace=False) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A server or Redis that cannot start fails the setup with its log and the fix."""
    with _plain_failures(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Perf tests run one at a time across xdist workers; their verdicts fail the test's call phase."""
    session = item.config.stash.get(SESSION_KEY, None)
    if session is None or item.get_closest_marker("perf") is None:
        return (yield)
    with session.exclusive_perf_lock(), _plain_failures(item):
        try:
            result = yield
        except (pytest.skip.Exception, pytest.xfail.Exception):
            raise  # an outcome the test chose, not an error of the measurement
        except BaseException as exc:
            session.record_error(item, exc)
            raise
        session.judge_test(item)
    return result
