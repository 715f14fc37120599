"""The managed-process launcher with real children: process group, cleanup registry, group stop,
crash reports, the port-clash retry, and ``start_server`` built on it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.embedded.launch import start_server
from pytest_tfserving.process import cleanup
from pytest_tfserving.process.errors import BackendError, ServerCrashed
from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch, launch_on_free_ports
from pytest_tfserving.process.wait import LogLineWait
from tests.unit.process.children import (
    ANNOUNCES_PORTS,
    BINDS_PORT,
    DETACHES_HELPERS,
    DIES_EARLY,
    HAS_GRANDCHILD,
    IGNORES_SIGTERM,
    NEVER_READY,
    PARENT_OF_MANAGED,
    gone,
    python,
)


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    return gone(pid, timeout_s, poll_s=0.05)


@pytest.fixture
def started() -> Iterator[list[ManagedProcess]]:
    processes: list[ManagedProcess] = []
    yield processes
    for process in processes:
        process.stop(grace_s=2.0)


def test_own_process_group_registered_until_stopped(started: list[ManagedProcess], tmp_path: Path) -> None:
    process = launch(Launch(python(IGNORES_SIGTERM), tmp_path / "a.log", LogLineWait("ready")), 30.0)
    started.append(process)
    assert os.getpgid(process.pid) == process.pid  # leads its own group: stop signals the whole group
    assert process in cleanup.registered()
    assert "ready" in process.logs()
    process.check_alive()
    process.stop()
    assert process not in cleanup.registered()
    process.stop()  # idempotent


def test_stop_sends_term_then_kill_after_the_grace(started: list[ManagedProcess], tmp_path: Path) -> None:
    stubborn = launch(Launch(python(IGNORES_SIGTERM), tmp_path / "b.log", LogLineWait("ready")), 30.0)
    started.append(stubborn)
    began = time.monotonic()
    stubborn.stop(grace_s=0.5)
    assert 0.5 <= time.monotonic() - began < 5.0
    assert stubborn.returncode() == -signal.SIGKILL

    polite = launch(Launch(python(NEVER_READY), tmp_path / "c.log", LogLineWait("warming")), 30.0)
    started.append(polite)
    polite.stop()
    assert polite.returncode() == -signal.SIGTERM


def test_stop_kills_grandchildren_in_the_group(started: list[ManagedProcess], tmp_path: Path) -> None:
    line = LogLineWait(r"grandchild (?P<pid>\d+)")
    process = launch(Launch(python(HAS_GRANDCHILD), tmp_path / "d.log", line), 30.0)
    started.append(process)
    grandchild = int(line.group("pid"))
    assert psutil.pid_exists(grandchild)
    process.stop()
    assert _gone(grandchild)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc are Linux-only")
def test_stop_kills_and_reaps_what_the_server_detached(started: list[ManagedProcess], tmp_path: Path) -> None:
    """Teardown (not only SIGTERM): a setsid child and a double-forked daemon of the server, outside
    its group, are killed by their launch's token and reaped (no zombie stays with pytest)."""
    line = LogLineWait(r"helpers (?P<own>\d+) (?P<daemon>\d+)")
    process = launch(Launch(python(DETACHES_HELPERS), tmp_path / "e.log", line), 30.0)
    started.append(process)
    helpers = [int(line.group("own")), int(line.group("daemon"))]
    assert all(psutil.Process(pid).ppid() in (process.pid, os.getpid()) for pid in helpers)  # adopted
    process.stop(grace_s=2.0)
    for pid in helpers:
        assert _gone(pid), f"helper {pid} outlived the stop"
        assert not psutil.pid_exists(pid), f"helper {pid} was killed but left a zombie"


def test_check_alive_reports_the_exit_status_and_the_log_tail(
    started: list[ManagedProcess], tmp_path: Path
) -> None:
    process = launch(
        Launch(python(NEVER_READY), tmp_path / "e.log", LogLineWait("warming"), name="srv"), 30.0
    )
    started.append(process)
    os.kill(process.pid, signal.SIGKILL)
    process.popen.wait(timeout=10)
    with pytest.raises(ServerCrashed) as info:
        process.check_alive()
    assert str(info.value) == (
        f"srv (pid {process.pid}) exited with status -9; log {tmp_path / 'e.log'}, last lines:\n"
        "still warming up"
    )


def test_missing_executable_is_a_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot start no-such-server"):
        ManagedProcess(["/nonexistent/no-such-server"], tmp_path / "f.log")


def test_the_child_dies_with_its_parent_even_on_sigkill(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    parent = subprocess.Popen(
        python(PARENT_OF_MANAGED, str(tmp_path / "g.log")), stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.pid_exists(child)
        parent.kill()
        parent.wait(timeout=10)
        assert _gone(child), "the managed child outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.communicate(timeout=10)


class Clash:
    """Plans a port-binding server; occupies the chosen port itself on the first ``clashes`` attempts."""

    def __init__(self, tmp_path: Path, clashes: int) -> None:
        self.tmp_path = tmp_path
        self.clashes = clashes
        self.attempts: list[tuple[int, ...]] = []
        self.squatters: list[socket.socket] = []

    def __call__(self, ports: tuple[int, ...]) -> Launch:
        self.attempts.append(ports)
        if len(self.attempts) <= self.clashes:
            squatter = socket.socket()
            squatter.bind(("127.0.0.1", ports[0]))  # another process wins the race for the port
            self.squatters.append(squatter)
        log = self.tmp_path / f"attempt-{len(self.attempts)}.log"
        return Launch(python(BINDS_PORT, str(ports[0])), log, LogLineWait("listening"), name="binder")

    def close(self) -> None:
        for squatter in self.squatters:
            squatter.close()


def test_a_lost_port_race_is_retried_on_fresh_ports(tmp_path: Path) -> None:
    plan = Clash(tmp_path, clashes=1)
    try:
        process, ports = launch_on_free_ports(plan, 2, 30.0)
    finally:
        plan.close()
    try:
        assert len(plan.attempts) == 2 and ports == plan.attempts[1]
        assert len(set(ports)) == 2
        assert "Address already in use" in (tmp_path / "attempt-1.log").read_text()
        assert f"listening on {ports[0]}" in process.logs()
    finally:
        process.stop()


def test_port_races_are_retried_at_most_attempts_times(tmp_path: Path) -> None:
    plan = Clash(tmp_path, clashes=10)
    try:
        with pytest.raises(ServerCrashed, match="Address already in use"):
            launch_on_free_ports(plan, 1, 30.0, attempts=3)
    finally:
        plan.close()
    assert len(plan.attempts) == 3


def test_other_start_failures_are_not_retried(tmp_path: Path) -> None:
    attempts: list[tuple[int, ...]] = []

    def plan(ports: tuple[int, ...]) -> Launch:
        attempts.append(ports)
        return Launch(python(DIES_EARLY), tmp_path / "h.log", LogLineWait("never"))

    with pytest.raises(ServerCrashed, match="exited with status 3"):
        launch_on_free_ports(plan, 1, 30.0)
    assert len(attempts) == 1


def test_start_server_reads_ports_and_keeps_the_log_after_stop(tmp_path: Path) -> None:
    server = start_server(python(ANNOUNCES_PORTS, "0.2", "7101", "7102"), timeout_s=30.0)
    log_dir = server.managed.log_path.parent
    try:
        assert (server.grpc_target, server.rest_url) == ("127.0.0.1:7101", "http://127.0.0.1:7102")
        assert server.process.poll() is None
        assert server.managed in cleanup.registered()
    finally:
        code = server.stop()
    assert code == 0  # SIGTERM handled: a clean exit
    assert "loading models" in server.log()
    assert not log_dir.exists()  # its temporary log directory is gone; the text is kept


def test_start_server_without_rest_and_into_a_given_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = start_server(python(ANNOUNCES_PORTS, "0", "7201", "0"), want_rest=False, log_path=log)
    try:
        assert (server.grpc_port, server.rest_port) == (7201, 0)
    finally:
        server.stop()
    assert "Running gRPC ModelServer at 0.0.0.0:7201" in log.read_text()


def test_start_server_failure_carries_the_log(tmp_path: Path) -> None:
    with pytest.raises(ServerCrashed, match=r"(?s)exited with status 3.*fatal: cannot load model"):
        start_server(python(DIES_EARLY), timeout_s=30.0, log_path=tmp_path / "server.log")
