"""What our process, the Locust master and the Locust workers say to each other, and how it is encoded.

Locust carries custom messages with msgpack, so everything here is plain data: the run's setup (the
pre-serialized request bodies of our ``RequestPool`` and the window plan) and each worker's window
records (``WindowRecord`` with its histogram in ``Histogram.to_dict`` form). No Locust or gevent
imports: our process, which must never be monkey-patched, uses this module too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.loops import WindowRecord
from pytest_tfserving.load.payloads import RequestPool

# master -> workers
SETUP = "tfserving_setup"  # a RunSetup as a dict
GO = "tfserving_go"  # {"start_in_s": seconds until the warm-up starts}
STOP = "tfserving_stop"  # stop sending; a partial window is dropped
# workers -> master
HELLO = "tfserving_hello"  # {"worker": name}: handlers registered, send the setup (repeated till then)
READY = "tfserving_ready"  # {"worker": name}: setup received, client open
WINDOW = "tfserving_window"  # {"worker": name, "record": record_to_data(...)}
FAILED = "tfserving_failed"  # {"worker": name, "error": traceback text}


@dataclass(frozen=True)
class RunSetup:
    """Everything a Locust worker needs to send our requests and cut our windows."""

    protocol: str  # "grpc" | "rest"
    target: str  # host:port (gRPC) or http://host:port (REST)
    model_name: str
    bodies: tuple[bytes, ...]  # RequestPool.bodies
    order: tuple[int, ...]  # RequestPool.order
    mode: str  # "closed" | "open"
    users: int  # all users over all workers
    rate: float  # open loop: requests/s over all users
    warmup_s: float
    window_s: float
    max_windows: int
    timeout_s: float
    workers: int  # Locust workers sharing the load (request i of worker w sends pool entry w + i * workers)

    def pool(self) -> RequestPool:
        return RequestPool(self.bodies, np.asarray(self.order, dtype=np.int32))

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["bodies"], data["order"] = list(self.bodies), list(self.order)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RunSetup:
        given = dict(data)
        given["bodies"], given["order"] = tuple(data["bodies"]), tuple(int(i) for i in data["order"])
        return cls(**given)


def record_to_data(record: WindowRecord) -> dict[str, Any]:
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    data["histogram"] = record.histogram.to_dict()
    return data


def record_from_data(data: dict[str, Any]) -> WindowRecord:
    given = dict(data)
    given["histogram"] = Histogram.from_dict(data["histogram"])
    given["errors_by_status"] = dict(data["errors_by_status"])
    return WindowRecord(**given)
