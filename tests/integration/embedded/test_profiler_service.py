"""tensorflow.ProfilerService on the embedded server's gRPC port (``--enable_profiler``, default true),
as TF Serving registers it: TensorFlow's own profiler client captures a trace of the serving process
into the log directory; with the flag off the service is absent; Monitor is unimplemented; and no
other port is opened for it."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import psutil
import pytest

from pytest_tfserving.embedded.profiler_service import xspace_is_empty
from tests.integration.embedded.conftest import StartServer
from tests.integration.embedded.embedded_helpers import rest_predict


def _predict_while(server_rest: str, stop: threading.Event) -> None:
    while not stop.is_set():
        rest_predict(server_rest, {"instances": [[[[0.5] * 3] * 8] * 8]})


def test_a_trace_of_the_serving_process_lands_in_the_log_directory(
    start: StartServer, tmp_path: Path
) -> None:
    from tensorflow.python.profiler import profiler_client

    server = start()
    stop = threading.Event()
    load = threading.Thread(target=_predict_while, args=(server.rest_url, stop), daemon=True)
    load.start()
    try:
        profiler_client.trace(server.grpc_target, str(tmp_path), 500, "", 3)
    finally:
        stop.set()
        load.join(timeout=30)
    (written,) = (tmp_path / "plugins" / "profile").glob("*/*.xplane.pb")
    assert not xspace_is_empty(written.read_bytes())
    connections = psutil.Process(server.process.pid).net_connections("inet")
    listening = {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
    assert listening == {server.grpc_port, server.rest_port}  # no profiler port of its own


def test_monitor_is_unimplemented_as_upstream(start: StartServer) -> None:
    server = start()
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary("/tensorflow.ProfilerService/Monitor")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=30)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, "unimplemented.")


def test_without_the_flag_there_is_no_profiler_service(start: StartServer) -> None:
    server = start("--enable_profiler=false")
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary("/tensorflow.ProfilerService/Terminate")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=30)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_an_xspace_without_events_is_empty() -> None:
    line_with_event = b"\x22\x00"  # XLine.events (4): one empty XEvent
    plane = b"\x1a" + bytes([len(line_with_event)]) + line_with_event  # XPlane.lines (3)
    assert not xspace_is_empty(b"\x0a" + bytes([len(plane)]) + plane)  # XSpace.planes (1)
    assert xspace_is_empty(b"\x0a\x02\x1a\x00")  # a plane with an empty line
    assert xspace_is_empty(b"")
