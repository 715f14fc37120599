"""Readiness as composable wait strategies and the one poll loop that runs them.

A strategy answers "ready yet?" once per poll; the errors it lists in ``transient`` mean "not yet"
(connection refused while the server starts), anything else is a real failure and ends the wait.
``wait_until_ready`` also stops early when the watched process or container died, and its timeout
error carries the log tail, so the reader sees why the server never got ready.
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

from pytest_tfserving.process.errors import ReadinessTimeout, tail
from pytest_tfserving.process.readiness import has_available_version

HTTP_TRANSIENT: tuple[type[BaseException], ...] = (OSError, ValueError, http.client.HTTPException)
_NOT_KNOWN_YET: tuple[type[BaseException], ...] = (*HTTP_TRANSIENT, LookupError)

Url = str | Callable[[], str]  # a callable when the port is only known once the server runs


class WaitStrategy(ABC):
    """One readiness condition; ``ready`` gets the server's log as read for this poll.

    The log is read on every poll only for strategies with ``uses_log`` (else ``ready`` gets "").
    """

    transient: tuple[type[BaseException], ...] = ()
    uses_log = False

    @abstractmethod
    def ready(self, log: str) -> bool: ...

    def is_transient(self, error: Exception) -> bool:
        return isinstance(error, self.transient)

    @abstractmethod
    def describe(self) -> str:
        """What is being waited for, for the timeout message ("models ['tiny'] AVAILABLE at ...")."""


class Watched(Protocol):
    def check_alive(self) -> None:
        """Raise ServerCrashed (or the like) when the process or container died."""


class LogLineWait(WaitStrategy):
    """A line matching ``pattern`` appeared in the log; ``group`` reads its named groups (ports)."""

    uses_log = True

    def __init__(self, pattern: str | re.Pattern[str], what: str | None = None) -> None:
        self.pattern = re.compile(pattern)
        self.what = what or f"a log line matching {self.pattern.pattern!r}"
        self.match: re.Match[str] | None = None

    def ready(self, log: str) -> bool:
        if self.match is None:
            self.match = self.pattern.search(log)
        return self.match is not None

    def group(self, name: str) -> str:
        if self.match is None:
            raise LookupError(f"{self.what} has not appeared yet")
        return self.match[name]

    def describe(self) -> str:
        return self.what


class HttpWait(WaitStrategy):
    """``GET url`` answers 2xx and ``predicate(body)`` holds; refused connections and errors are "not yet"."""

    transient = HTTP_TRANSIENT

    def __init__(
        self,
        url: Url,
        predicate: Callable[[bytes], bool] = lambda body: True,
        what: str | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.predicate = predicate
        self.what = what
        self.timeout_s = timeout_s

    def ready(self, log: str) -> bool:
        url = self.url() if callable(self.url) else self.url
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
            return self.predicate(response.read())

    def describe(self) -> str:
        return self.what or f"GET {_where(self.url)}"


class CallableWait(WaitStrategy):
    """``check()`` returns true (a PING, a channel probe); the exception types given are "not yet"."""

    def __init__(
        self, check: Callable[[], bool], what: str, transient: tuple[type[BaseException], ...] = ()
    ) -> None:
        self.check = check
        self.what = what
        self.transient = transient

    def ready(self, log: str) -> bool:
        return bool(self.check())

    def describe(self) -> str:
        return self.what


class AllOf(WaitStrategy):
    """Every strategy, in order: a later one is asked only once the earlier ones are satisfied."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        self.strategies = strategies
        self.uses_log = any(s.uses_log for s in strategies)
        self._done = 0

    def ready(self, log: str) -> bool:
        while self._done < len(self.strategies):
            if not self.strategies[self._done].ready(log):
                return False
            self._done += 1
        return True

    def is_transient(self, error: Exception) -> bool:
        """Judged by the strategy that raised it: the first one not yet satisfied."""
        return self._done < len(self.strategies) and self.strategies[self._done].is_transient(error)

    def describe(self) -> str:
        return " and ".join(s.describe() for s in self.strategies[self._done :]) or "nothing"


class ModelsAvailableWait(AllOf):
    """TF Serving's readiness: ``GET /v1/models/{name}`` lists an AVAILABLE version, for every name."""

    def __init__(self, rest_url: Url, names: Sequence[str], timeout_s: float = 2.0) -> None:
        self.rest_url = rest_url
        self.names = list(names)
        super().__init__(
            *(
                HttpWait(_model_url(rest_url, n), has_available_version, timeout_s=timeout_s)
                for n in self.names
            )
        )

    def describe(self) -> str:
        return f"models {self.names} AVAILABLE at {_where(self.rest_url)}"


def _where(url: Url) -> str:
    if isinstance(url, str):
        return url
    try:
        return url()
    except _NOT_KNOWN_YET:  # the port is not published or announced yet
        return "the REST port"


def _model_url(rest_url: Url, name: str) -> Url:
    if isinstance(rest_url, str):
        return f"{rest_url}/v1/models/{name}"
    return lambda: f"{rest_url()}/v1/models/{name}"


def wait_until_ready(
    strategy: WaitStrategy,
    timeout_s: float,
    process: Watched | None = None,
    log: Callable[[], str] | None = None,
    *,
    subject: str = "server",
    log_label: str = "Log",
    hint: str = "",
    poll_s: float = 0.1,
) -> None:
    """Poll ``strategy`` until ready; at least once, however short ``timeout_s`` is.

    Transient errors are remembered for the message and retried; others propagate. ``process`` is
    checked after every unsuccessful poll, so a crash ends the wait at once with its own error.
    On timeout raises ReadinessTimeout naming what is missing, with the tail of ``log``.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        text = log() if log is not None and strategy.uses_log else ""
        try:
            if strategy.ready(text):
                return
        except Exception as exc:
            if not strategy.is_transient(exc):
                raise
            last_error = exc
        if process is not None:
            process.check_alive()
        if time.monotonic() > deadline:
            raise _timeout(strategy, timeout_s, subject, hint, last_error, log, log_label)
        time.sleep(poll_s)


def _timeout(
    strategy: WaitStrategy,
    timeout_s: float,
    subject: str,
    hint: str,
    last_error: BaseException | None,
    log: Callable[[], str] | None,
    log_label: str,
) -> ReadinessTimeout:
    waiting_for = strategy.describe()
    message = f"{subject} not ready after {timeout_s:.0f}s: waiting for {waiting_for}"
    if last_error is not None:
        message += f" (last error: {last_error})"
    if hint:
        message += f"; {hint}"
    log_tail = tail(log()) if log is not None else ""
    if log is not None:
        message += f". {log_label}, last lines:\n{log_tail}"
    return ReadinessTimeout(message, waiting_for=waiting_for, log_tail=log_tail, last_error=last_error)
