"""The ``[locust]`` extra: is Locust installed here, and the error that says how to install it.

Looked up without importing: importing Locust monkey-patches the standard library with gevent, which
our own process (pytest, asyncio load loops) must never undergo. Only the Locust master and worker
processes import it. No pytest imports.
"""

from __future__ import annotations

import importlib.util

LOCUST_INSTALL = "pip install 'pytest-tfserving[locust]'"
LOCUST_MODULES = ("locust", "gevent", "geventhttpclient")
READY_LINE = "tfserving locust master ready"  # the master's log line, with its control address
KEY_ENV = "PYTEST_TFSERVING_LOCUST_KEY"  # the master's control connection key (hex), from our process


class LocustMissing(ImportError):
    """engine="locust" needs the [locust] extra, which this environment lacks; the message says how."""


def locust_problem() -> str | None:
    """None when Locust can run here, else one sentence naming what is missing and the pip command."""
    missing = [name for name in LOCUST_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"engine='locust' needs Locust, which this environment lacks (no module {', '.join(missing)}); "
        f"install the [locust] extra: {LOCUST_INSTALL}"
    )


def require_locust() -> None:
    problem = locust_problem()
    if problem is not None:
        raise LocustMissing(problem)
