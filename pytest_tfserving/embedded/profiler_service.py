"""``tensorflow.ProfilerService`` on the gRPC port, as ``--enable_profiler`` (default true) registers it.

Upstream (xla/tsl/profiler/rpc/profiler_service_impl.cc) profiles this process for
``opts.duration_ms`` (or until ``Terminate`` names the session), saves the XSpace as
``<repository_root>/<session_id>/<host_name>.xplane.pb`` and answers ``empty_trace`` when it holds no
events; ``Monitor`` is "unimplemented.". Here the same through TensorFlow's in-process profiler session
(the one ``tf.profiler.experimental.start`` uses, with its default tracer levels; the request's
levels are not applied), so nothing else listens: TensorFlow's own profiler
server would open a second port on every interface. The service's messages are not in pip TensorFlow;
the few fields read and written are decoded by hand (field numbers from profiler_service.proto).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from pytest_tfserving.load.wire import iter_fields

SERVICE = "tensorflow.ProfilerService"
_POLL_S = 0.001  # upstream sleeps 1 ms between checks


def _fields(data: bytes) -> dict[int, int | bytes]:
    """The last value of each field (proto3 scalars and strings: the last one wins)."""
    return dict(iter_fields(data))


def _text(fields: dict[int, int | bytes], number: int) -> str:
    value = fields.get(number, b"")
    return value.decode() if isinstance(value, bytes) else ""


def _duration_ms(opts: bytes) -> int:
    """ProfileOptions.duration_ms (profiler_options.proto), how long upstream profiles."""
    from tensorflow.tsl.profiler.protobuf import profiler_options_pb2

    return int(profiler_options_pb2.ProfileOptions.FromString(opts).duration_ms)


def xspace_is_empty(xspace: bytes) -> bool:
    """IsEmpty(XSpace): no plane (field 1) has a line (3) with an event (4)."""
    for field, plane in iter_fields(xspace):
        if field != 1 or not isinstance(plane, bytes):
            continue
        for plane_field, line in iter_fields(plane):
            if plane_field == 3 and isinstance(line, bytes) and any(f == 4 for f, _ in iter_fields(line)):
                return False
    return True


class ProfilerServicer:
    """Profile / Terminate / Monitor with upstream's behaviour and status texts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped: set[str] = set()

    def profile(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        from tensorflow.python.profiler.internal import _pywrap_profiler

        fields = _fields(request)
        opts = fields.get(4, b"")
        duration_ms = _duration_ms(opts if isinstance(opts, bytes) else b"")
        session_id = _text(fields, 6)
        workdir = Path(tempfile.mkdtemp(prefix="profile-"))
        try:
            session = _pywrap_profiler.ProfilerSession()
            try:
                session.start(str(workdir), {})  # TensorFlow's default tracer levels
            except Exception as exc:  # another session is active: upstream's status from Create
                context.abort(grpc.StatusCode.INTERNAL, str(exc))
            if not self._wait(duration_ms, session_id, context):
                session.export_to_tb()  # ends the session; the data is dropped with workdir
                context.abort(grpc.StatusCode.CANCELLED, "Cancelled")
            session.export_to_tb()
            written = sorted(workdir.rglob("*.xplane.pb"))
            xspace = written[-1].read_bytes() if written else b""
            target = Path(_text(fields, 5)) / session_id / f"{_text(fields, 7)}.xplane.pb"
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(xspace)
            except OSError as exc:
                context.abort(grpc.StatusCode.INTERNAL, str(exc))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return b"\x38\x01" if xspace_is_empty(xspace) else b""  # ProfileResponse.empty_trace = 7

    def _wait(self, duration_ms: int, session_id: str, context: grpc.ServicerContext) -> bool:
        """Sleep out the duration; False when the client went away, early when Terminate came."""
        deadline = time.monotonic() + duration_ms / 1000.0
        while time.monotonic() < deadline:
            time.sleep(_POLL_S)
            if not context.is_active():
                return False
            with self._lock:
                if session_id in self._stopped:
                    self._stopped.discard(session_id)
                    break
        return True

    def terminate(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self._stopped.add(_text(_fields(request), 1))
        return b""

    def monitor(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "unimplemented.")
        return b""  # not reached: abort raises


def profiler_handler() -> Any:
    """The generic handler to add to a grpc.Server (raw bytes in and out)."""
    servicer = ProfilerServicer()
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Profile": grpc.unary_unary_rpc_method_handler(servicer.profile),
            "Terminate": grpc.unary_unary_rpc_method_handler(servicer.terminate),
            "Monitor": grpc.unary_unary_rpc_method_handler(servicer.monitor),
        },
    )
