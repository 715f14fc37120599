"""engine="locust" against the real embedded server: a Locust master and 2 worker processes on loopback.

The merged measurement must count exactly what the server counted (Prometheus request_latency of the
load's own series) over the measured windows, and a worker killed mid-run must be an error naming it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.load.locust_engine import LocustOptions, LocustWorkerLost
from pytest_tfserving.load.results import WindowSummary
from pytest_tfserving.metrics.prometheus import PrometheusScraper
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


def _locust_workers() -> list[psutil.Process]:
    me = psutil.Process()
    return [
        p for p in me.children(recursive=True)
        if "--worker" in p.cmdline() and any(part.endswith("locust_user.py") for part in p.cmdline())
    ]


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
    assert len(killed) == 1
    assert f"pid {killed[0]}" in str(caught.value)
    assert not _locust_workers(), "Locust processes were left running"
