"""Inside one Locust worker: our requests, our pacing and our windows, on gevent.

Each Locust user sends Predict requests with the pre-serialized bodies of our ``RequestPool`` and
records every answer in the same ``WindowRecord`` (log-bucket ``Histogram``) as our own generator;
Locust's own statistics round response times too coarsely for millisecond latencies. A request
belongs to the window it was *sent* in (scheduled in, in open loop), and window k is shipped only
once all its requests have answered, so every request a worker sent in the measured windows is
counted exactly once: the merged count equals what the server counted over those windows.

Closed loop: each user sends, waits for the answer, sends again (concurrency = users). Open loop:
each user has its own constant schedule at ``rate / users`` (``wait_time`` = time to the next
scheduled send, Locust's pacing), and latency runs from the scheduled send, as in ``load.loops``.
Imports gevent and grpc; import it only in a Locust process (after ``locust`` monkey-patched).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from pytest_tfserving.load.clients import CONNECTION, TIMEOUT, predict_url
from pytest_tfserving.load.locust_messages import RunSetup
from pytest_tfserving.load.loops import LATE_SEND_S, WindowRecord
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.wire import PREDICT_METHOD

_DRAIN_POLL_S = 0.001


def worker_name() -> str:
    """How reports name this worker: host and process id."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class GeventGrpcClient:
    """Blocking grpc stubs; with ``grpc.experimental.gevent.init_gevent()`` they yield to other users."""

    def __init__(self, target: str, pool: RequestPool, timeout_s: float) -> None:
        import grpc

        self._grpc = grpc
        self._pool = pool
        self._timeout_s = timeout_s
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        self._channel = grpc.insecure_channel(target, options=options)
        self._call = self._channel.unary_unary(PREDICT_METHOD)

    def send(self, i: int) -> tuple[bool, str]:
        try:
            self._call(self._pool.body(i), timeout=self._timeout_s)
        except self._grpc.RpcError as exc:
            code = exc.code()
            if code == self._grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, TIMEOUT
            return False, code.name
        return True, "OK"

    def close(self) -> None:
        self._channel.close()


class GeventRestClient:
    """geventhttpclient (Locust's own fast HTTP client) over keep-alive connections."""

    def __init__(
        self, url: str, model_name: str, pool: RequestPool, timeout_s: float, connections: int
    ) -> None:
        from geventhttpclient import URL, HTTPClient

        self._pool = pool
        address = URL(predict_url(url, model_name))
        self._path = address.request_uri
        self._http = HTTPClient.from_url(
            address, concurrency=max(1, connections), connection_timeout=timeout_s, network_timeout=timeout_s
        )
        self._headers = {"Content-Type": "application/json"}

    def send(self, i: int) -> tuple[bool, str]:
        try:
            response = self._http.post(self._path, body=self._pool.body(i), headers=self._headers)
            response.read()
            status = response.status_code
        except (TimeoutError, gevent.Timeout):
            return False, TIMEOUT
        except OSError:
            return False, CONNECTION
        return status == 200, str(status)

    def close(self) -> None:
        self._http.close()


class StopSending(Exception):
    """This user's part of the run is over (last window sent, or the run was stopped)."""


class WorkerDriver:
    """One Locust worker's share of a run: the client, the clock, the windows, and their shipping."""

    def __init__(self, setup: RunSetup, worker_index: int, emit: Callable[[WindowRecord], None]) -> None:
        self.setup = setup
        self.worker_index = worker_index
        self._emit = emit
        pool = setup.pool()
        if setup.protocol == "grpc":
            self.client: Any = GeventGrpcClient(setup.target, pool, setup.timeout_s)
        else:
            self.client = GeventRestClient(setup.target, setup.model_name, pool, setup.timeout_s, setup.users)
        self.go = gevent.event.Event()
        self.stopped = False
        self.start_at = math.inf  # time.monotonic() of the warm-up's start, once GO arrives
        self._records: dict[int, WindowRecord] = {}
        self._in_flight: dict[int, int] = {}
        self._sent = 0
        self._users = 0
        self._ticker: gevent.Greenlet | None = None

    @property
    def measure_start(self) -> float:
        return self.start_at + self.setup.warmup_s

    def start(self, start_in_s: float) -> None:
        """GO: the warm-up starts ``start_in_s`` from now; the window ticker starts with it."""
        self.start_at = time.monotonic() + start_in_s
        self.go.set()
        self._ticker = gevent.spawn(self._ship_windows)

    def stop(self) -> None:
        self.stopped = True
        self.go.set()
        if self._ticker is not None:
            self._ticker.kill(block=False)
        self.client.close()

    # -- users ------------------------------------------------------------------------------------
    def new_user(self) -> UserPace:
        """A user's schedule: in open loop user u of U sends at u / rate + n * U / rate."""
        number = self.worker_index + self.setup.workers * self._users
        self._users += 1
        return UserPace(self, number)

    def _take_index(self) -> int:
        i = self.worker_index + self._sent * self.setup.workers
        self._sent += 1
        return i

    def _window_of(self, t: float) -> int:
        """-1 during warm-up, else the window ``t`` lies in (max_windows or more: after the run)."""
        if t < self.measure_start:
            return -1
        return int((t - self.measure_start) // self.setup.window_s)

    def send_one(self, pace: UserPace) -> None:
        """One request of one user: wait for GO, send (at its scheduled time), record."""
        self.go.wait()
        gevent.sleep(max(0.0, self.start_at - time.monotonic()))
        if self.stopped:
            raise StopSending
        now = time.monotonic()
        scheduled = pace.next_send(now)
        k = self._window_of(scheduled)
        if k >= self.setup.max_windows:
            raise StopSending
        record = self._record(k)
        if record is not None:
            record.sent += 1
            lag = now - scheduled
            if lag > LATE_SEND_S:
                record.late_sends += 1
            record.max_send_lag_ms = max(record.max_send_lag_ms, lag * 1000.0)
            self._in_flight[k] = self._in_flight.get(k, 0) + 1
        try:
            ok, status = self.client.send(self._take_index())
        finally:
            if record is not None:
                self._in_flight[k] -= 1
        if record is not None:
            record.add(time.monotonic() - scheduled, ok, status)

    def _record(self, k: int) -> WindowRecord | None:
        if k < 0:
            return None
        record = self._records.get(k)
        if record is None:
            record = self._records[k] = WindowRecord(index=k, start_s=k * self.setup.window_s)
        return record

    # -- windows ----------------------------------------------------------------------------------
    def _ship_windows(self) -> None:
        window_s = self.setup.window_s
        cpu = time.process_time()
        for k in range(self.setup.max_windows):
            end = self.measure_start + (k + 1) * window_s
            gevent.sleep(max(0.0, end - time.monotonic()))
            lag_ms = max(0.0, time.monotonic() - end) * 1000.0
            while self._in_flight.get(k, 0) > 0 and not self.stopped:
                gevent.sleep(_DRAIN_POLL_S)  # its last requests are still out: they belong to it
            if self.stopped:
                return
            record = self._record(k)
            assert record is not None
            del self._records[k]
            self._in_flight.pop(k, None)
            record.duration_s = window_s
            record.max_loop_lag_ms = lag_ms
            now_cpu = time.process_time()
            record.loop_cpu = (now_cpu - cpu) / window_s  # the worker's one gevent hub thread, mostly
            cpu = now_cpu
            self._emit(record)


class UserPace:
    """When one user sends next: at once in closed loop; on its own constant schedule in open loop."""

    def __init__(self, driver: WorkerDriver, number: int) -> None:
        self._driver = driver
        setup = driver.setup
        self._period = setup.users / setup.rate if setup.mode == "open" else 0.0
        self._offset = (number % setup.users) / setup.rate if setup.mode == "open" else 0.0
        self._n = 0

    def next_send(self, now: float) -> float:
        """The scheduled time of this send (``now`` in closed loop), and step to the next one."""
        if not self._period:
            return now
        scheduled = self._driver.start_at + self._offset + self._n * self._period
        self._n += 1
        return scheduled

    def wait_s(self) -> float:
        """Locust's ``wait_time``: seconds until this user's next scheduled send (0 in closed loop)."""
        if not self._period or not self._driver.go.is_set():
            return 0.0
        scheduled = self._driver.start_at + self._offset + self._n * self._period
        return max(0.0, scheduled - time.monotonic())
