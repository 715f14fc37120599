"""Redis for the prediction-cache tests: a local ``redis-server``, a container, or an external URL.

All three share one small interface (``RedisService``): ``url``, ``client()``, ``flush()``, ``stop()``.
The ones we start run with persistence off (``--save "" --appendonly no``: a cache benchmark must not
pay for snapshots) and listen on 127.0.0.1 only. No pytest imports: fixtures wrap these.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.backends.container_wait import container_logs, polling_wait, published_port
from pytest_tfserving.backends.docker import CONTAINER_LABELS
from pytest_tfserving.backends.engine import engine_status, start_hint
from pytest_tfserving.process import cleanup
from pytest_tfserving.process.errors import ReadinessTimeout, tail
from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch_on_free_ports
from pytest_tfserving.process.wait import CallableWait, wait_until_ready

if TYPE_CHECKING:
    import redis

DEFAULT_REDIS_IMAGE = "redis:7.4.2"  # pinned, like the server image
REDIS_PORT = 6379
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


class RedisError(BackendError):
    """Redis could not be started or reached; the message names the fix."""


class RedisService(Protocol):
    url: str
    description: str

    def client(self) -> redis.Redis: ...

    def flush(self) -> None: ...

    def stop(self) -> None: ...


def _client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_timeout=10.0, socket_connect_timeout=5.0)


def _flush(url: str, *, everything: bool) -> None:
    """Empty every database (a server we own) or only the URL's database (someone else's server)."""
    client = _client(url)
    try:
        if everything:
            client.flushall()
        else:
            client.flushdb()
    finally:
        client.close()


def _ping(url: str) -> bool:
    client = _client(url)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _answers_ping(url: str | Callable[[], str], what: str) -> CallableWait:
    """Ready once PING answers; refused connections and a server still loading are "not yet"."""
    import redis

    def check() -> bool:
        return _ping(url() if callable(url) else url)

    return CallableWait(check, what, transient=(redis.exceptions.RedisError, OSError))


class LocalRedis:
    """A ``redis-server`` child process on a free loopback port, in its own process group."""

    def __init__(self, url: str, process: ManagedProcess, version: str) -> None:
        self.url = url
        self.process = process
        self.description = f"redis-server {version} (local)"

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self) -> redis.Redis:
        return _client(self.url)

    def flush(self) -> None:
        self.process.check_alive()
        _flush(self.url, everything=True)

    def logs(self) -> str:
        return self.process.logs()

    def stop(self) -> None:
        self.process.stop(grace_s=5.0)


def find_redis_server(binary: str | None = None) -> str | None:
    return shutil.which(binary or "redis-server")


def _redis_version(path: str) -> str:
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return "unknown"


def start_local_redis(
    workdir: Path, *, binary: str | None = None, startup_timeout_s: float = 10.0
) -> LocalRedis:
    """Start ``redis-server`` (PATH or ``binary``) on 127.0.0.1 with persistence off; wait for PING."""
    path = find_redis_server(binary)
    if path is None:
        raise RedisError(
            f"{binary or 'redis-server'} not found on PATH. Install it (apt-get install redis-server, "
            "brew install redis) or point the tests at a running Redis with --redis-url=redis://HOST:PORT/0"
        )
    version = _redis_version(path)

    def plan(ports: tuple[int, ...]) -> Launch:
        rundir = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
        argv = [
            path,
            "--port",
            str(ports[0]),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            *NO_PERSISTENCE,
            "--dir",
            str(rundir),
            "--logfile",
            "",  # to stdout, which goes to our log file
        ]
        url = _url(ports[0])
        return Launch(argv, rundir / "redis.log", _answers_ping(url, f"PING at {url}"), name="redis-server")

    try:
        process, (port,) = launch_on_free_ports(plan, 1, startup_timeout_s)
    except BackendError as exc:
        raise RedisError(str(exc)) from exc
    return LocalRedis(_url(port), process, version)


def _url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


class ContainerRedis:
    """Redis in a container (testcontainers ``RedisContainer``), published on 127.0.0.1 only."""

    def __init__(self, url: str, container: Any, image: str) -> None:
        self.url = url
        self.container = container
        self.description = f"{image} (container)"
        self._stopped = False

    def client(self) -> redis.Redis:
        return _client(self.url)

    def flush(self) -> None:
        _flush(self.url, everything=True)

    def logs(self) -> str:
        return container_logs(self.container)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        cleanup.unregister(self)
        self.container.stop()


def _ping_on_loopback(container: Any) -> CallableWait:
    """PING at the port published on 127.0.0.1 (RedisContainer's own wait may use a gateway IP)."""
    return _answers_ping(lambda: _url(published_port(container, REDIS_PORT)), "PING on 127.0.0.1")


def start_redis_container(
    image: str = DEFAULT_REDIS_IMAGE, *, startup_timeout_s: float = 60.0
) -> ContainerRedis:
    """Start ``image`` with persistence off; wait until it answers PING."""
    answered, detail = engine_status()
    if not answered:
        raise RedisError(
            f"a Redis container needs a Docker-compatible engine, but {detail}. Start one, use a local "
            "redis-server (apt-get install redis-server), or pass --redis-url=redis://HOST:PORT/0"
        )
    from testcontainers.community.redis import RedisContainer

    container = RedisContainer(image=image, port=REDIS_PORT)
    container.with_command(["redis-server", *NO_PERSISTENCE])
    container.with_kwargs(labels=dict(CONTAINER_LABELS))
    container.ports[str(REDIS_PORT)] = ("127.0.0.1", None)  # type: ignore[assignment]
    container.waiting_for(polling_wait(_ping_on_loopback, startup_timeout_s, 0.2, subject="Redis"))
    service = ContainerRedis("", container, image)
    cleanup.register(service)
    try:
        container.start()
        port = published_port(container, REDIS_PORT)
    except Exception as exc:
        log = service.logs()
        service.stop()
        raise RedisError(
            f"{image} did not start: {exc}{start_hint(exc)}\ncontainer log, last lines:\n{tail(log)}"
        ) from exc
    except BaseException:
        service.stop()
        raise
    service.url = _url(port)
    return service


class ExternalRedis:
    """A Redis someone else runs: ``stop`` leaves it running; ``flush`` empties only the URL's database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"external ({_redact(url)})"

    def client(self) -> redis.Redis:
        return _client(self.url)

    def flush(self) -> None:
        """FLUSHDB of the URL's database (not FLUSHALL: other databases on that server are not ours)."""
        _flush(self.url, everything=False)

    def stop(self) -> None:
        """Not ours to stop."""


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def connect_redis(url: str, *, timeout_s: float = 5.0) -> ExternalRedis:
    """An external Redis at ``url``; fails at once with a clear message when it does not answer PING."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise RedisError(f"--redis-url={url!r} must look like redis://HOST:PORT/DB (or rediss://, unix://)")
    try:
        wait_until_ready(_answers_ping(url, "PING"), timeout_s, poll_s=0.2)
    except ReadinessTimeout as exc:
        raise RedisError(
            f"Redis at {_redact(url)} does not answer PING ({exc.last_error}); check --redis-url"
        ) from exc
    return ExternalRedis(url)
