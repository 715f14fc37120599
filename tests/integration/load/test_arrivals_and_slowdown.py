"""Open-loop arrival processes, and how each loop reacts when the server becomes slower mid-run."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.load.clients import Client, open_client
from pytest_tfserving.load.loops import LoopPlan, WindowRecord, run_windows
from pytest_tfserving.load.payloads import PayloadOptions, build_pool, fetch_signature
from tests.integration.load.load_servers import MODEL, Server, embedded_server, export_tiny


class _Timed:
    """The real gRPC client, with the start time of every send noted."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.starts: list[float] = []

    async def send(self, i: int) -> tuple[bool, str]:
        self.starts.append(asyncio.get_running_loop().time())
        return await self.client.send(i)

    async def close(self) -> None:
        await self.client.close()


def _send_times(server: Server, arrival: str) -> np.ndarray:
    pool = build_pool(
        fetch_signature(server.grpc_target, "grpc", MODEL),
        "grpc",
        MODEL,
        "serving_default",
        PayloadOptions(pool_size=4),
    )
    plan = LoopPlan(mode="open", rate=100, arrival=arrival, warmup_s=1.0, window_s=3.0, max_windows=1, seed=3)

    async def run() -> np.ndarray:
        timed = _Timed(open_client("grpc", server.grpc_target, MODEL, pool, timeout_s=5, connections=1))
        start = asyncio.get_running_loop().time()
        try:
            await run_windows(timed, plan, start, emit=lambda r: None)
        finally:
            await timed.close()
        return np.asarray(timed.starts) - start

    return asyncio.run(run())


def test_constant_and_poisson_arrivals_keep_their_rate(server: Server) -> None:
    """The schedule's statistics are unit-tested (test_arrivals.py); here the real client must keep up.

    A stalled loop catches up with a burst, so the whole run (1 s warm-up + 3 s) is counted.
    """
    constant, poisson = _send_times(server, "constant"), _send_times(server, "poisson")
    assert len(constant) == pytest.approx(400, rel=0.05)
    assert len(poisson) == pytest.approx(400, rel=0.2)
    assert constant[-1] == pytest.approx(4.0, abs=0.3) and poisson[-1] == pytest.approx(4.0, abs=0.3)


@pytest.fixture()
def swappable(tmp_path: Path) -> tuple[Path, Path]:
    """A model directory with the tiny model as version 1, and a slower model staged for version 2."""
    base, staged = tmp_path / "model", tmp_path / "staged"
    export_tiny(base / "1")
    export_tiny(staged, extra_dense_layers=40, width=64)
    return base, staged


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_server_slowing_down_mid_run_shows_up(
    swappable: tuple[Path, Path], tmp_path: Path, mode: str
) -> None:
    base, staged = swappable
    with embedded_server(base, tmp_path / "server.log", "--file_system_poll_wait_seconds=1") as server:
        seen: list[object] = []

        def swap_after_window_4(window: object) -> None:
            seen.append(window)
            if len(seen) == 4:
                shutil.move(str(staged), str(base / "2"))  # one rename: the server sees a complete version

        m = measure(
            LoadConfig(server.grpc_target, MODEL, mode=mode, concurrency=2, rate=25),
            warmup_s=3.0,
            window_s=1.0,
            rule=StabilityRule(min_windows=14, max_windows=14),
            progress=swap_after_window_4,
        )
    early, late = m.windows[1:4], m.windows[-3:]  # medians: one window of a stall cannot decide it
    assert m.errors == 0
    if mode == "open":
        assert np.median([w.p50_ms for w in late]) > 2.0 * np.median([w.p50_ms for w in early])
    else:
        assert np.median([w.rps for w in late]) < 0.6 * np.median([w.rps for w in early])


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_stalled_loop_still_measures_whole_windows(server: Server, mode: str) -> None:
    """The loop blocked (as by a collector pass or a descheduled VM) from just before warm-up ends
    until past the first window's end: that window is measured whole, from its late start, instead
    of as a sliver with no request in it, and the stall shows up as loop lag."""
    pool = build_pool(
        fetch_signature(server.grpc_target, "grpc", MODEL), "grpc", MODEL, "serving_default", PayloadOptions()
    )
    plan = LoopPlan(mode=mode, concurrency=1, rate=50, warmup_s=0.3, window_s=0.4, max_windows=3)
    windows: list[WindowRecord] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        client = open_client("grpc", server.grpc_target, MODEL, pool, timeout_s=5, connections=1)
        start = loop.time()
        loop.call_at(start + 0.25, time.sleep, 0.6)  # blocks the loop until 0.45 s into window 0
        try:
            await run_windows(client, plan, start, emit=windows.append)
        finally:
            await client.close()

    asyncio.run(run())
    assert [w.index for w in windows] == [0, 1, 2]
    assert all(w.duration_s >= 0.39 and w.count - w.errors > 0 for w in windows)
    assert windows[0].max_loop_lag_ms >= 400
