"""A server that dies during a measurement is reported as its crash, not as the client's symptoms."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from pytest_tfserving.backends.base import ServerCrashed
from pytest_tfserving.perf.context import Server


@contextlib.contextmanager
def crash_explains_errors(*servers: Server, grace_s: float = 1.0) -> Iterator[None]:
    """An error while a server is dead is the crash's symptom (reset connections, a vanished pid):
    raise the server's ServerCrashed, which carries its exit status and log, chained to the symptom."""
    try:
        yield
    except Exception as symptom:
        deadline = time.monotonic() + grace_s  # the reset can reach us just before the exit is reaped
        while True:
            for server in servers:
                try:
                    server.check_alive()
                except ServerCrashed as crashed:
                    raise crashed from symptom
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def alive_around(*servers: Server) -> Iterator[None]:
    """Around one run on ``servers``: each alive before and after (a crash that left no client error
    still fails the run), and a client error during it explained by a crash."""
    for server in servers:
        server.check_alive()
    with crash_explains_errors(*servers):
        yield
    for server in servers:
        server.check_alive()
