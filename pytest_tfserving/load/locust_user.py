"""The Locust user class this package ships: what every Locust worker of a pytest-tfserving run loads.

Start workers on other hosts against a master run by pytest (``--locust-master-host``) with::

    locust --worker -f "$(python -c 'import pytest_tfserving.load.locust_user as m; print(m.__file__)')" \\
        --master-host RUNNER --master-port PORT

The worker gets everything else from the master in a custom message (``locust_messages.SETUP``): the
server, the pre-serialized request bodies, the window plan. It ships one window record per window
back (``locust_messages.WINDOW``). gRPC is made gevent-cooperative before any channel is opened.
"""

from __future__ import annotations

import traceback
from typing import Any

from pytest_tfserving.load.locust_extra import LocustMissing, locust_problem

try:
    import locust  # noqa: F401  (first: Locust monkey-patches the standard library for gevent)
except ImportError as exc:
    raise LocustMissing(locust_problem() or str(exc)) from exc
from grpc.experimental import gevent as grpc_gevent

grpc_gevent.init_gevent()

import gevent  # noqa: E402
from locust import User, events, task  # noqa: E402
from locust.exception import StopUser  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402

from pytest_tfserving.load import locust_messages as messages  # noqa: E402
from pytest_tfserving.load.locust_driver import StopSending, UserPace, WorkerDriver, worker_name  # noqa: E402

HELLO_EVERY_S = 0.5


class _State:
    driver: WorkerDriver | None = None


def _pace_of(user: TFServingUser) -> float:
    return user.pace.wait_s() if user.pace is not None else 0.0


class TFServingUser(User):
    """Sends Predict requests (gRPC or REST) with our payloads; latencies go to our windows."""

    wait_time = _pace_of

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pace: UserPace | None = None

    def on_start(self) -> None:
        if _State.driver is None:
            raise StopUser()  # spawned without a setup (a bare `locust -f` run): nothing to send
        self.pace = _State.driver.new_user()

    @task
    def predict(self) -> None:
        driver = _State.driver
        if driver is None or self.pace is None:
            raise StopUser()
        try:
            driver.send_one(self.pace)
        except StopSending:
            raise StopUser() from None


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return
    name = worker_name()

    def on_setup(environment: Any, msg: Any, **_: Any) -> None:
        try:
            setup = messages.RunSetup.from_data(msg.data)
            emit = lambda record: runner.send_message(  # noqa: E731
                messages.WINDOW, {"worker": name, "record": messages.record_to_data(record)}
            )
            _State.driver = WorkerDriver(setup, runner.worker_index, emit)
        except Exception:
            runner.send_message(messages.FAILED, {"worker": name, "error": traceback.format_exc()})
            return
        runner.send_message(messages.READY, {"worker": name})

    def on_go(environment: Any, msg: Any, **_: Any) -> None:
        if _State.driver is not None:
            _State.driver.start(float(msg.data["start_in_s"]))

    def on_stop(environment: Any, msg: Any, **_: Any) -> None:
        if _State.driver is not None:
            _State.driver.stop()

    runner.register_message(messages.SETUP, on_setup)
    runner.register_message(messages.GO, on_go)
    runner.register_message(messages.STOP, on_stop)

    def say_hello() -> None:
        # Locust connects a worker before this init hook registers our handlers, so the master
        # waits for this greeting; repeated, since it may come before the master listens for it.
        while _State.driver is None:
            runner.send_message(messages.HELLO, {"worker": name})
            gevent.sleep(HELLO_EVERY_S)

    gevent.spawn(say_hello)
