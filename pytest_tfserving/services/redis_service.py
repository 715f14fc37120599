"""Redis for the prediction-cache tests: a local ``redis-server``, a container, or an external URL.

All three share one small interface (``RedisService``): ``url``, ``client()``, ``flush()``, ``stop()``.
The ones we start run with persistence off (``--save "" --appendonly no``: a cache benchmark must not
pay for snapshots) and listen on 127.0.0.1 only. No pytest imports: fixtures wrap these.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.backends.docker import CONTAINER_LABELS
from pytest_tfserving.backends.process import ManagedProcess, tail
from pytest_tfserving.process import cleanup
from pytest_tfserving.process.ports import address_in_use, free_loopback_port

if TYPE_CHECKING:
    import redis

DEFAULT_REDIS_IMAGE = "redis:7.4.2"  # pinned, like the server image
REDIS_PORT = 6379
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
BIND_ATTEMPTS = 3


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
    deadline = time.monotonic() + startup_timeout_s
    for attempt in range(1, BIND_ATTEMPTS + 1):
        port = free_loopback_port()
        rundir = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
        argv = [
            path,
            "--port",
            str(port),
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
        process = ManagedProcess(argv, rundir / "redis.log", name="redis-server")
        url = f"redis://127.0.0.1:{port}/0"
        try:
            process.wait_until(
                functools.partial(_ping, url),
                max(1.0, deadline - time.monotonic()),
                f"PING at {url}",
            )
        except BackendError as exc:
            process.stop()
            if attempt < BIND_ATTEMPTS and address_in_use(process.logs()):
                continue
            raise RedisError(str(exc)) from exc
        except BaseException:
            process.stop()
            raise
        return LocalRedis(url, process, version)
    raise AssertionError("unreachable")


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
        try:
            out, err = self.container.get_logs()
            return (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
        except Exception as exc:
            return f"(container log unavailable: {exc})"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        cleanup.unregister(self)
        self.container.stop()


def _ping_on_loopback(timeout_s: float) -> Any:
    """Wait for PING at the port published on 127.0.0.1 (RedisContainer's own may use a gateway IP)."""
    import redis
    from testcontainers.core.waiting_utils import WaitStrategy

    from pytest_tfserving.backends.docker import published_port

    class PingOnLoopback(WaitStrategy):
        def wait_until_ready(self, container: Any) -> None:
            def ready() -> bool:
                container.reload()
                if container.status in ("exited", "dead"):
                    raise StopIteration  # ends the poll: the container is gone
                try:
                    return _ping(f"redis://127.0.0.1:{published_port(container, REDIS_PORT)}/0")
                except redis.exceptions.RedisError:
                    return False

            if not self._poll(ready):
                raise TimeoutError(f"Redis did not answer PING within {self._startup_timeout:.0f}s")

    return PingOnLoopback().with_startup_timeout(int(max(1, timeout_s))).with_poll_interval(0.2)


def start_redis_container(
    image: str = DEFAULT_REDIS_IMAGE, *, startup_timeout_s: float = 60.0
) -> ContainerRedis:
    """Start ``image`` with persistence off; wait until it answers PING."""
    from pytest_tfserving.backends.docker import engine_status

    answered, detail = engine_status()
    if not answered:
        raise RedisError(
            f"a Redis container needs a Docker-compatible engine, but {detail}. Start one, use a local "
            "redis-server (apt-get install redis-server), or pass --redis-url=redis://HOST:PORT/0"
        )
    from testcontainers.community.redis import RedisContainer

    from pytest_tfserving.backends.docker import published_port, start_hint

    container = RedisContainer(image=image, port=REDIS_PORT)
    container.with_command(["redis-server", *NO_PERSISTENCE])
    container.with_kwargs(labels=dict(CONTAINER_LABELS))
    container.ports[str(REDIS_PORT)] = ("127.0.0.1", None)  # type: ignore[assignment]
    container.waiting_for(_ping_on_loopback(startup_timeout_s))
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
    service.url = f"redis://127.0.0.1:{port}/0"
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
    import redis

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise RedisError(f"--redis-url={url!r} must look like redis://HOST:PORT/DB (or rediss://, unix://)")
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if _ping(url):
                return ExternalRedis(url)
        except redis.exceptions.RedisError as exc:
            last = exc
        time.sleep(0.2)
    raise RedisError(f"Redis at {_redact(url)} does not answer PING ({last}); check --redis-url")
