"""engine="locust" against the real embedded server: a Locust master and 2 worker processes on loopback.

The merged measurement must count exactly what the server counted (Prometheus request_latency of the
load's own series) over the measured windows, and a worker killed mid-run must be an error naming it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.load.locust_engine import LocustOptions, LocustWorkerLost, user_file
from pytest_tfserving.load.results import WindowSummary
from pytest_tfserving.metrics.prometheus import PrometheusScraper
from pytest_tfserving.process.launcher import ManagedProcess
from pytest_tfserving.process.ports import free_loopback_port
from pytest_tfserving.serving.metric_labels import request_latency_labels
from tests.integration.load.load_servers import METRICS_PATH, MODEL, Server

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="Locust is not installed: pip install 'pytest-tfserving[locust]'",
)


def _server_count(server: Server, protocol: str) -> float:
    labels = request_latency_labels(MODEL, protocol)
    scraper = PrometheusScraper(server.rest_url + METRICS_PATH, labels=labels)
    return scraper.scrape().count


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_two_workers_count_what_the_server_counted(server: Server, protocol: str, tmp_path: Path) -> None:
    # No warm-up: every request the workers send lies in a measured window, so the server's count over
    # the run must equal the merged count exactly (a worker's windows dropped would show here).
    before = _server_count(server, protocol)
    m = measure(
        LoadConfig(server.target(protocol), MODEL, protocol=protocol, concurrency=4),
        engine="locust",
        workers=2,
        locust=LocustOptions(log_dir=tmp_path),
        rule=StabilityRule(min_windows=3, max_windows=3),
        warmup_s=0.0,
        window_s=1.0,
    )
    after = _server_count(server, protocol)
    assert m.errors == 0 and len(m.windows) == 3
    assert m.extra["workers"] == 2 and m.concurrency == 4
    assert m.count == sum(w.count for w in m.windows) > 50
    assert m.count == after - before
    assert 0 < m.p50_ms <= m.p99_ms <= m.max_ms
    assert m.server_p50_ms is None  # no server_latency source given: nothing made up


def test_open_loop_reports_the_achieved_rate(server: Server, tmp_path: Path) -> None:
    m = measure(
        LoadConfig(server.grpc_target, MODEL, mode="open", rate=60, concurrency=4),
        engine="locust",
        workers=2,
        locust=LocustOptions(log_dir=tmp_path),
        rule=StabilityRule(min_windows=3, max_windows=3),
        warmup_s=0.5,
        window_s=1.0,
    )
    assert (m.mode, m.target_rps) == ("open", 60)
    assert m.errors == 0
    assert m.extra["sent_rps"] == pytest.approx(60, rel=0.1)
    assert m.rps == pytest.approx(60, rel=0.15)


def _cmdline(process: psutil.Process) -> list[str]:
    """A live process's command line; [] for one that is gone or a zombie."""
    try:
        return [] if process.status() == psutil.STATUS_ZOMBIE else process.cmdline()
    except psutil.Error:
        return []


def _locust_workers() -> list[psutil.Process]:
    return [
        p for p in psutil.Process().children(recursive=True)
        if "--worker" in _cmdline(p) and any(part.endswith("locust_user.py") for part in _cmdline(p))
    ]


def _locust_processes() -> list[psutil.Process]:
    """Our Locust master and workers still alive under this process."""
    return [p for p in psutil.Process().children(recursive=True) if any("locust" in a for a in _cmdline(p))]


def test_a_worker_killed_mid_run_is_reported(server: Server, tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_one_worker(summary: WindowSummary) -> None:
        if not killed:  # after the first merged window: the run is under way
            victim = _locust_workers()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    with pytest.raises(LocustWorkerLost) as caught:
        measure(
            LoadConfig(server.grpc_target, MODEL, concurrency=2),
            engine="locust",
            workers=2,
            locust=LocustOptions(log_dir=tmp_path),
            rule=StabilityRule(min_windows=8, max_windows=8),
            progress=kill_one_worker,
            warmup_s=0.5,
            window_s=1.0,
        )
    assert len(killed) == 1, caught.value
    assert f"pid {killed[0]}" in str(caught.value)
    assert not _locust_processes(), "Locust processes were left running"


def test_ctrl_c_mid_run_leaves_no_locust_process(server: Server, tmp_path: Path) -> None:
    def interrupt(summary: WindowSummary) -> None:
        assert len(_locust_workers()) == 2
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread, here after the first window

    with pytest.raises(KeyboardInterrupt):
        measure(
            LoadConfig(server.grpc_target, MODEL, concurrency=2),
            engine="locust",
            workers=2,
            locust=LocustOptions(log_dir=tmp_path),
            rule=StabilityRule(min_windows=8, max_windows=8),
            progress=interrupt,
            warmup_s=0.5,
            window_s=1.0,
        )
    assert not _locust_processes(), "Locust processes were left running"


def test_workers_started_elsewhere_join_a_master_on_a_given_address(server: Server, tmp_path: Path) -> None:
    """--locust-master-host: the master binds there and starts no workers; workers started the way a
    user starts them on other hosts (``locust --worker -f`` our user file) connect to it."""
    port = free_loopback_port()
    workers = [
        ManagedProcess(
            [sys.executable, "-m", "locust", "--worker", "-f", user_file(), "--master-host", "127.0.0.1",
             "--master-port", str(port)],
            tmp_path / f"fleet-worker-{k}.log",
            name=f"fleet worker {k}",
        )
        for k in range(2)
    ]
    try:
        before = _server_count(server, "grpc")
        m = measure(
            LoadConfig(server.grpc_target, MODEL, concurrency=4),
            engine="locust",
            locust=LocustOptions(master_host=f"127.0.0.1:{port}", expect_workers=2, log_dir=tmp_path),
            rule=StabilityRule(min_windows=2, max_windows=2),
            warmup_s=0.0,
            window_s=1.0,
        )
        after = _server_count(server, "grpc")
    finally:
        for worker in workers:
            worker.stop()
    assert m.extra["workers"] == 2 and m.errors == 0 and len(m.windows) == 2
    assert m.count == after - before > 20
    assert not list(tmp_path.glob("locust-worker-*.log")), "the engine started workers of its own"
