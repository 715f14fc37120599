"""Two servers measured in alternating windows (A B B A ...), in one run on one event loop.

Drift slower than a window pair (thermal, noisy neighbours) hits both sides alike; for drift within a
second, see ``alternating`` (request by request). A side may be several server processes
(--ab-replicas): round ``r`` measures process ``r mod m`` of each side.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.loops import run_windows
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.segment import Side, run_segment
from pytest_tfserving.load.summary import StabilityRule


def measure_interleaved(
    a: LoadConfig | Sequence[LoadConfig],
    b: LoadConfig | Sequence[LoadConfig],
    rounds: int = 5,
    *,
    warmup_s: float = 2.0,
    window_s: float = 1.0,
    rewarm_s: float = 0.2,
    order: str = "abba",
    stable_windows: int = 3,
    stable_tolerance: float = 0.10,
    progress: Callable[[str, WindowSummary], None] | None = None,
    seed: int = 0,
) -> tuple[Measurement, Measurement]:
    """Measure two servers in alternating windows so drift (thermal, noisy neighbours) hits both alike.

    Each round runs one window of A and one of B; with ``order="abba"`` every other round runs B first,
    which also cancels a linear drift within the round. Before each window the side is re-warmed for
    ``rewarm_s`` (not measured). Returns (A, B), each with ``rounds`` windows. A sequence of
    configs is one per process of that side: round ``r`` loads process ``r mod len`` (each is
    warmed up first); the first config's requests and summarizer serve the whole side.
    """
    replicas = {"a": _replicas(a), "b": _replicas(b)}
    a, b = replicas["a"][0], replicas["b"][0]
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if order not in ("abab", "abba"):
        raise ValueError(f"order must be 'abab' or 'abba', got {order!r}")
    rule = StabilityRule(
        min_windows=1, max_windows=rounds, last=min(stable_windows, rounds), tolerance=stable_tolerance
    )
    extra = {"interleaved_rounds": float(rounds)}
    sides = {"a": Side.prepare(a, rule, extra), "b": Side.prepare(b, rule, extra)}
    run_measured(_interleave(sides, replicas, rounds, warmup_s, window_s, rewarm_s, order, progress, seed))
    return sides["a"].summarizer.measurement(), sides["b"].summarizer.measurement()


def _replicas(side: LoadConfig | Sequence[LoadConfig]) -> tuple[LoadConfig, ...]:
    configs = (side,) if isinstance(side, LoadConfig) else tuple(side)
    if not configs:
        raise ValueError("each side needs at least one LoadConfig")
    return configs


async def _interleave(
    sides: dict[str, Side],
    replicas: dict[str, tuple[LoadConfig, ...]],
    rounds: int,
    warmup_s: float,
    window_s: float,
    rewarm_s: float,
    order: str,
    progress: Callable[[str, WindowSummary], None] | None,
    seed: int,
) -> None:
    clients = {
        name: [config.open_client(side.pool) for config in replicas[name]] for name, side in sides.items()
    }
    try:
        for name, side in sides.items():  # full warm-up once per process, not measured
            plan = side.config.plan(
                warmup_s=warmup_s, window_s=window_s, max_windows=1, max_requests=None, seed=seed
            )
            for client in clients[name]:
                await run_windows(client, plan, asyncio.get_running_loop().time(), emit=lambda r: None)
        origin = asyncio.get_running_loop().time()
        for r in range(rounds):
            names = ("b", "a") if order == "abba" and r % 2 else ("a", "b")
            for name in names:
                side = sides[name]
                plan = side.config.plan(
                    warmup_s=rewarm_s,
                    window_s=window_s,
                    max_windows=1,
                    max_requests=None,
                    seed=seed + 1000 * r,
                )
                report = None if progress is None else functools.partial(progress, name)
                client = clients[name][r % len(clients[name])]
                await run_segment(
                    client, plan, side.summarizer, report, stop_when_done=False, origin=origin
                )
    finally:
        await asyncio.gather(*(c.close() for side in clients.values() for c in side))
