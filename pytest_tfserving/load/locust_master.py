"""The Locust master of one measurement: ``python -m pytest_tfserving.load.locust_master``.

Started by ``locust_engine`` in its own process (Locust monkey-patches the standard library with gevent
on import, which our process must never see). It runs Locust's ``MasterRunner`` for ``TFServingUser``,
waits for the workers, hands them the run's setup, spawns the users, says GO, and relays every
worker's window record to our process over a ``multiprocessing.connection`` on loopback; our process
merges them (``window_merge``) and says when to stop. A worker that quits or goes missing (no
heartbeat) is reported by name.

Log line: ``READY_LINE control=127.0.0.1:PORT`` once our process can connect; the worker port follows
over that connection.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing.connection import Connection, Listener
from typing import Any

from pytest_tfserving.load.locust_extra import KEY_ENV, READY_LINE, LocustMissing, locust_problem

# Locust marks a worker missing after 3 s without a heartbeat; a starved worker on a busy machine can
# be that late and recover (its users keep running: Locust does not rebalance by default).
MISSING_GRACE_S = 10.0
START_IN_S = 0.5  # GO to the warm-up's start: time for the message to reach every worker
_POLL_S = 0.01


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_tfserving.load.locust_master")
    parser.add_argument("--bind-host", default="127.0.0.1", help="where workers connect (default: 127.0.0.1)")
    parser.add_argument("--bind-port", type=int, default=0, help="worker port (default: 0, any free port)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    problem = locust_problem()
    if problem is not None:
        raise LocustMissing(problem)
    # The control connection is made before Locust is imported: gevent's monkey-patching would hand
    # multiprocessing.connection a non-blocking socket. Afterwards it is only read once poll() says so.
    listener = Listener(("127.0.0.1", 0), authkey=bytes.fromhex(os.environ[KEY_ENV]))
    print(f"{READY_LINE} control=127.0.0.1:{listener.address[1]}", flush=True)
    conn = listener.accept()
    listener.close()
    request = conn.recv()
    import gevent
    import locust
    from locust.env import Environment

    from pytest_tfserving.load.locust_user import TFServingUser

    env = Environment(user_classes=[TFServingUser], events=locust.events)
    runner = env.create_master_runner(args.bind_host, args.bind_port)
    relay = _Relay(conn, runner, gevent)  # our handlers before any worker can reach us
    conn.send(("port", runner.server.port))
    try:
        relay.run(request)
    finally:
        runner.quit()
        gevent.sleep(0.2)  # let the quit messages leave
        conn.close()
    return 0


class _Relay:
    def __init__(self, conn: Connection, runner: Any, gevent: Any) -> None:
        from pytest_tfserving.load import locust_messages as messages

        self.messages = messages
        self.conn, self.runner, self.gevent = conn, runner, gevent
        self.names: dict[str, str] = {}  # Locust client id -> our worker name, once it took the setup
        self.setup: dict[str, Any] | None = None
        self.stop_requested = False
        runner.register_message(messages.HELLO, self._on_hello)
        runner.register_message(messages.READY, self._on_ready)
        runner.register_message(messages.FAILED, self._on_failed)
        runner.register_message(messages.WINDOW, self._on_window)

    def _send(self, *item: Any) -> None:
        self.conn.send(item)

    def _on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.setup is not None:
            self.runner.send_message(self.messages.SETUP, self.setup, client_id=msg.node_id)

    def _on_ready(self, environment: Any, msg: Any, **_: Any) -> None:
        self.names[msg.node_id] = msg.data["worker"]

    def _on_failed(self, environment: Any, msg: Any, **_: Any) -> None:
        self._send("failed", msg.data["worker"], msg.data["error"])

    def _on_window(self, environment: Any, msg: Any, **_: Any) -> None:
        self._send("window", msg.data["worker"], msg.data["record"])

    def _poll_parent(self) -> None:
        """Our process said stop (or went away)."""
        try:
            while self.conn.poll(0):
                if self.conn.recv() == "stop":
                    self.stop_requested = True
        except (EOFError, OSError):
            self.stop_requested = True

    def _connected(self) -> set[str]:
        clients = self.runner.clients
        return {c.id for c in clients.ready + clients.spawning + clients.running}

    def _wait(self, done: Any, timeout_s: float, what: str) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            self._poll_parent()
            if self.stop_requested:
                return False
            if time.monotonic() > deadline:
                self._send("failed", "master", f"timed out after {timeout_s:g} s waiting for {what}")
                return False
            self.gevent.sleep(_POLL_S)
        return True

    def run(self, request: dict[str, Any]) -> None:
        setup, expect, timeout_s = request["setup"], int(request["workers"]), float(request["timeout_s"])
        self.setup = setup  # from now on each worker's greeting is answered with it
        if not self._wait(lambda: len(self.names) >= expect and len(self._connected()) >= expect, timeout_s,
                          f"{expect} Locust worker(s) to connect and take the setup"):
            return
        members = set(self.names)
        extra = self._connected() - members
        if extra:
            self._send("failed", "master", f"{len(extra)} more Locust worker(s) connected than the {expect} "
                       "expected; raise --locust-expect-workers or stop them")
            return
        self._send("workers", sorted(self.names.values()))
        self.runner.start(int(setup["users"]), spawn_rate=max(1.0, float(setup["users"])))
        self.runner.send_message(self.messages.GO, {"start_in_s": START_IN_S})
        self._send("go", START_IN_S)
        missing_since: dict[str, float] = {}
        while not self.stop_requested:
            now = time.monotonic()
            present = {c.id for c in self.runner.clients.all}
            for client in members - self._connected():
                missing_since.setdefault(client, now)
            for client in members & self._connected():
                missing_since.pop(client, None)  # a late heartbeat: Locust calls it self-healed
            # Gone (quit, or dropped by Locust), or silent longer than a busy machine explains: lost.
            lost = {c for c, t in missing_since.items() if c not in present or now - t >= MISSING_GRACE_S}
            if lost:
                gone = ", ".join(sorted(self.names[c] for c in lost))
                self._send("lost", gone, "quit or stopped sending heartbeats to the Locust master")
                members -= lost
                for client in lost:
                    del missing_since[client]
            self._poll_parent()
            self.gevent.sleep(_POLL_S)
        self.runner.send_message(self.messages.STOP)
        self._send("stopped")


if __name__ == "__main__":
    sys.exit(main())
