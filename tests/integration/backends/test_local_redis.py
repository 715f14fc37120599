"""Local redis-server: started on a loopback port with persistence off, flushed, stopped for real."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.backends.base import ServerCrashed
from pytest_tfserving.process import cleanup
from pytest_tfserving.services.redis_service import (
    RedisError,
    connect_redis,
    find_redis_server,
    start_local_redis,
)

pytestmark = pytest.mark.skipif(
    find_redis_server() is None, reason="redis-server not installed (apt-get install redis-server)"
)


def test_start_set_get_flush_stop(tmp_path: Path) -> None:
    service = start_local_redis(tmp_path)
    try:
        assert service.url.startswith("redis://127.0.0.1:")
        assert service.process in cleanup.registered()
        client = service.client()
        client.set("key", b"value")
        assert client.get("key") == b"value"
        config = client.config_get("save") | client.config_get("appendonly")
        assert config == {"save": "", "appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        service.flush()
        assert client.get("key") is None
        assert client.dbsize() == 0
        client.close()
        assert "Ready to accept connections" in service.logs()
    finally:
        service.stop()
    assert not psutil.pid_exists(service.pid) or psutil.Process(service.pid).status() == "zombie"
    assert service.process not in cleanup.registered()
    service.stop()  # idempotent


def test_two_instances_get_distinct_ports(tmp_path: Path) -> None:
    first = start_local_redis(tmp_path)
    second = start_local_redis(tmp_path)
    try:
        assert first.url != second.url
        first.client().set("k", 1)
        assert second.client().get("k") is None
    finally:
        first.stop()
        second.stop()


def test_external_redis_flushes_only_its_database(tmp_path: Path) -> None:
    service = start_local_redis(tmp_path)
    try:
        base = service.url.rsplit("/", 1)[0]
        db1 = connect_redis(f"{base}/1")
        db0 = connect_redis(f"{base}/0")
        db0.client().set("a", 1)
        db1.client().set("b", 1)
        db1.flush()
        assert db0.client().get("a") == b"1"
        assert db1.client().get("b") is None
        db1.stop()  # not ours: leaves the server running
        assert db0.client().ping()
    finally:
        service.stop()


def test_missing_binary_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RedisError, match=r"apt-get install redis-server.*--redis-url"):
        start_local_redis(tmp_path, binary="redis-server-does-not-exist")


def test_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RedisError, match="does not answer PING"):
        connect_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
    with pytest.raises(RedisError, match="redis://HOST:PORT"):
        connect_redis("localhost:6379")


def test_crashed_redis_is_reported_with_log(tmp_path: Path) -> None:
    service = start_local_redis(tmp_path)
    try:
        os.kill(service.pid, signal.SIGKILL)
        service.process.popen.wait(timeout=10)
        with pytest.raises(ServerCrashed, match="redis-server"):
            service.flush()
    finally:
        service.stop()
