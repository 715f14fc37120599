"""The errors a started server (process or container) reports; each carries the log tail that explains it."""

from __future__ import annotations

LOG_TAIL_LINES = 60


class BackendError(RuntimeError):
    """A server could not be started or reached; the message carries its log and the fix."""


class ServerCrashed(BackendError):
    """The server process or container died: an error, never reported as a regression."""


class ReadinessTimeout(BackendError):
    """The server did not get ready in time; ``waiting_for`` and ``log_tail`` say what was missing."""

    def __init__(
        self, message: str, *, waiting_for: str, log_tail: str, last_error: BaseException | None
    ) -> None:
        super().__init__(message)
        self.waiting_for = waiting_for
        self.log_tail = log_tail
        self.last_error = last_error


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])
