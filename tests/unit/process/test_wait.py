"""The wait strategies and the one poll loop, against real child processes and a real HTTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.process.errors import BackendError, ReadinessTimeout, ServerCrashed
from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch
from pytest_tfserving.process.ports import free_loopback_port
from pytest_tfserving.process.ready_line import GRPC_READY, REST_READY, grpc_line, rest_line
from pytest_tfserving.process.wait import (
    AllOf,
    CallableWait,
    HttpWait,
    LogLineWait,
    ModelsAvailableWait,
    wait_until_ready,
)
from tests.unit.process.children import (
    ANNOUNCES_PORTS,
    DIES_EARLY,
    MODEL_STATUS_SERVER,
    NEVER_READY,
    python,
)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """Processes a test started; stopped afterwards whatever happened."""
    processes: list[ManagedProcess] = []
    yield processes
    for process in processes:
        process.stop(grace_s=2.0)


def _start(started: list[ManagedProcess], argv: list[str], log: Path) -> ManagedProcess:
    process = ManagedProcess(argv, log)
    started.append(process)
    return process


class Flaky:
    """A check that fails with ``error`` ``failures`` times, then succeeds: a server still starting."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return True


@pytest.mark.parametrize(
    ("line", "pattern", "port"),
    [
        (grpc_line(8500), GRPC_READY, 8500),
        (rest_line(8501), REST_READY, 8501),
        ("2024-01-01 I server.cc] Running gRPC ModelServer at 0.0.0.0:8500 ...", GRPC_READY, 8500),
        ("[evhttp_server.cc : 245] NET_LOG: Exporting HTTP/REST API at:localhost:8501 ...", REST_READY, 8501),
        ("Running gRPC ModelServer at [::]:9000 ...", GRPC_READY, 9000),
        ("Exporting HTTP/REST API at: localhost:9001 ...", REST_READY, 9001),
    ],
)
def test_readiness_lines_written_and_parsed_in_one_place(
    line: str, pattern: re.Pattern[str], port: int
) -> None:
    wait = LogLineWait(pattern)
    assert wait.ready(f"some earlier line\n{line}\nlater\n")
    assert int(wait.group("port")) == port


def test_log_lines_from_a_child_give_its_ports(started: list[ManagedProcess], tmp_path: Path) -> None:
    process = _start(started, python(ANNOUNCES_PORTS, "0.3", "7001", "7002"), tmp_path / "server.log")
    grpc, rest = LogLineWait(GRPC_READY, "gRPC line"), LogLineWait(REST_READY, "REST line")
    began = time.monotonic()
    process.wait_ready(AllOf(grpc, rest), timeout_s=30.0, poll_s=0.05)
    assert time.monotonic() - began >= 0.3
    assert (grpc.group("port"), rest.group("port")) == ("7001", "7002")


def test_timeout_names_what_is_missing_and_carries_the_log_tail(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    process = _start(started, python(NEVER_READY), tmp_path / "server.log")
    began = time.monotonic()
    with pytest.raises(ReadinessTimeout) as info:
        process.wait_ready(LogLineWait(GRPC_READY, "the gRPC readiness line"), timeout_s=1.0, hint="try more")
    assert 1.0 <= time.monotonic() - began < 10.0
    message = str(info.value)
    assert f"(pid {process.pid}) not ready after 1s: waiting for the gRPC readiness line; try more" in message
    assert f"Log {tmp_path / 'server.log'}, last lines:\nstill warming up" in message
    assert info.value.log_tail == "still warming up"
    assert isinstance(info.value, BackendError)
    assert process.returncode() is None  # the wait does not stop it: its launcher does


def test_a_dead_process_ends_the_wait_at_once_with_its_exit_status(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    process = _start(started, python(DIES_EARLY), tmp_path / "server.log")
    began = time.monotonic()
    with pytest.raises(ServerCrashed) as info:
        process.wait_ready(LogLineWait(GRPC_READY), timeout_s=60.0)
    assert time.monotonic() - began < 15.0  # not the 60 s timeout
    message = str(info.value)
    assert f"(pid {process.pid}) exited with status 3" in message
    assert "fatal: cannot load model 'tiny'" in message  # the log tail


def test_transient_errors_are_retried_and_the_last_one_reported() -> None:
    flaky = Flaky(3, ConnectionRefusedError("refused"))
    wait_until_ready(CallableWait(flaky, "PING", transient=(OSError,)), timeout_s=10.0, poll_s=0.01)
    assert flaky.calls == 4

    never = Flaky(10**6, ConnectionRefusedError("connection refused"))
    with pytest.raises(ReadinessTimeout) as info:
        wait_until_ready(
            CallableWait(never, "PING", transient=(OSError,)), timeout_s=0.3, subject="redis", poll_s=0.01
        )
    assert str(info.value) == "redis not ready after 0s: waiting for PING (last error: connection refused)"
    assert info.value.last_error is never.error
    assert never.calls > 1


def test_a_non_transient_error_ends_the_wait_at_once() -> None:
    broken = Flaky(10**6, KeyError("no such setting"))
    began = time.monotonic()
    with pytest.raises(KeyError, match="no such setting"):
        wait_until_ready(CallableWait(broken, "PING", transient=(OSError,)), timeout_s=30.0)
    assert broken.calls == 1
    assert time.monotonic() - began < 5.0


def test_all_of_asks_in_order_and_judges_errors_by_the_strategy_that_raised() -> None:
    first = Flaky(2, ConnectionRefusedError("first not up"))
    second = Flaky(0, ConnectionRefusedError("unused"))
    combined = AllOf(
        CallableWait(first, "first", transient=(OSError,)), CallableWait(second, "second", transient=())
    )
    wait_until_ready(combined, timeout_s=10.0, poll_s=0.01)
    assert (first.calls, second.calls) == (3, 1)  # second only once first was satisfied

    # OSError is transient for the first strategy only: raised by the second, it ends the wait.
    strict = AllOf(
        CallableWait(lambda: True, "first", transient=(OSError,)),
        CallableWait(Flaky(10**6, ConnectionRefusedError("second down")), "second"),
    )
    with pytest.raises(ConnectionRefusedError, match="second down"):
        wait_until_ready(strict, timeout_s=30.0, poll_s=0.01)


def test_all_of_names_only_what_is_still_missing() -> None:
    combined = AllOf(LogLineWait("alpha", "the alpha line"), LogLineWait("beta", "the beta line"))
    with pytest.raises(ReadinessTimeout) as info:
        wait_until_ready(combined, timeout_s=0.2, log=lambda: "alpha\n", poll_s=0.01)
    assert info.value.waiting_for == "the beta line"


def test_models_available_over_http_once_the_server_is_up(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    port = free_loopback_port()
    rest_url = f"http://127.0.0.1:{port}"
    process = _start(started, python(MODEL_STATUS_SERVER, "0.5", str(port)), tmp_path / "status.log")
    process.wait_ready(ModelsAvailableWait(rest_url, ["tiny"]), timeout_s=30.0)  # refused at first: retried

    with pytest.raises(ReadinessTimeout) as info:
        process.wait_ready(ModelsAvailableWait(rest_url, ["tiny", "missing"]), timeout_s=0.5)
    message = str(info.value)
    assert f"waiting for models ['tiny', 'missing'] AVAILABLE at {rest_url}" in message
    assert "(last error: HTTP Error 404: Servable not found)" in message


def test_http_wait_url_may_be_known_only_later(started: list[ManagedProcess], tmp_path: Path) -> None:
    port = free_loopback_port()
    process = _start(started, python(MODEL_STATUS_SERVER, "0", str(port)), tmp_path / "status.log")
    url = f"http://127.0.0.1:{port}/v1/models/tiny"
    asked: list[str] = []

    def status_url() -> str:  # like a port read from a readiness line: asked only after that line
        asked.append(url)
        return url

    wait = AllOf(
        LogLineWait("serving", "the start line"), HttpWait(status_url, lambda body: b"AVAILABLE" in body)
    )
    process.wait_ready(wait, timeout_s=30.0)
    assert asked and "serving" in process.logs()


def test_launch_stops_the_process_when_it_does_not_get_ready(tmp_path: Path) -> None:
    from pytest_tfserving.process import cleanup

    before = set(map(id, cleanup.registered()))
    with pytest.raises(ReadinessTimeout, match="still warming up") as info:
        launch(Launch(python(NEVER_READY), tmp_path / "server.log", LogLineWait("never")), timeout_s=0.5)
    pid = int(re.findall(r"pid (\d+)", str(info.value))[0])
    assert not psutil.pid_exists(pid)
    assert set(map(id, cleanup.registered())) == before
