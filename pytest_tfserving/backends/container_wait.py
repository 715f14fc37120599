"""Containers wait with our strategies and poll loop (``process.wait``), plugged into testcontainers.

Also the two things a wait needs from a started container: its published loopback port and its log.

testcontainers runs a container's wait strategy inside ``start()``; ``polling_wait`` is such a strategy
that runs ``wait_until_ready`` instead, with a ``ContainerWatch`` in the role of the process, so a
container that exits during startup ends the wait at once. Works with testcontainers containers and
plain docker-py ones (both have ``reload()`` and ``status``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_tfserving.process.errors import ServerCrashed, tail
from pytest_tfserving.process.wait import WaitStrategy, wait_until_ready

GONE = ("exited", "dead")


class ContainerWatch:
    """``check_alive`` for a container that is still starting; with ``log``, its crash carries the tail."""

    def __init__(self, container: Any, log: Callable[[], str] | None = None) -> None:
        self.container = container
        self.log = log

    def check_alive(self) -> None:
        self.container.reload()
        status = self.container.status
        if status in GONE:
            message = f"container exited during startup (status {status})"
            if self.log is not None:
                message += f"; container log, last lines:\n{tail(self.log())}"
            raise ServerCrashed(message)


def published_port(container: Any, port: int) -> int:
    """The 127.0.0.1 port the engine published for ``port``.

    Not testcontainers' ``get_exposed_port``: when it believes it runs inside a container it returns
    the container port and a gateway IP, but we publish on this machine's loopback and connect there.
    """
    return int(container.get_docker_client().port(container.get_container_id(), port))


def loopback_url(container: Any, port: int) -> str:
    """``http://127.0.0.1:PORT`` for the container's ``port`` (ConnectionError until it is published)."""
    return f"http://127.0.0.1:{published_port(container, port)}"


def container_logs(container: Any) -> str:
    """stdout + stderr of a testcontainers container, or why they are unavailable."""
    try:
        out, err = container.get_logs()
        return (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
    except Exception as exc:
        return f"(container log unavailable: {exc})"


def polling_wait(
    strategy_for: Callable[[Any], WaitStrategy],
    timeout_s: float,
    poll_s: float,
    *,
    subject: str,
    hint: str = "",
) -> Any:
    """A testcontainers wait strategy running ``strategy_for(container)`` in our poll loop.

    The log is not attached here: the caller's start error adds the container log once (reading it
    on every poll would cost an engine round trip each time).
    """
    from testcontainers.core.waiting_utils import WaitStrategy as ContainerWaitStrategy

    class PollingWait(ContainerWaitStrategy):
        def wait_until_ready(self, container: Any) -> None:
            wait_until_ready(
                strategy_for(container),
                self._startup_timeout,
                ContainerWatch(container),
                subject=subject,
                hint=hint,
                poll_s=self._poll_interval,
            )

    return PollingWait().with_startup_timeout(int(max(1, timeout_s))).with_poll_interval(poll_s)
