"""The embedded server listens on loopback unless --bind_address says otherwise; gRPC also serves a
UNIX socket (--grpc_socket_path) and takes --grpc_channel_arguments, as tensorflow_model_server does."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import grpc
import psutil
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc


def _listening(pid: int, port: int) -> set[str]:
    """How the sockets listening on ``port`` are bound: "loopback" or "any" (v4-mapped and dual-stack
    IPv6 sockets, which gRPC opens, count as what they accept)."""
    kinds = set()
    for conn in psutil.Process(pid).net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or conn.laddr.port != port:
            continue
        address = ipaddress.ip_address(conn.laddr.ip.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        kinds.add("loopback" if address.is_loopback else "any" if address.is_unspecified else str(address))
    return kinds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _versions(target: str) -> list[int]:
    with grpc.insecure_channel(target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "m"
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
        return [s.version for s in reply.model_version_status]


def test_loopback_by_default(serve, half_plus_two: Path, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "1").symlink_to(half_plus_two)
    server = serve("--model_name=m", f"--model_base_path={tmp_path / 'm'}")
    assert _listening(server.process.pid, server.grpc_port) == {"loopback"}
    assert _listening(server.process.pid, server.rest_port) == {"loopback"}
    assert f"Running gRPC ModelServer at 127.0.0.1:{server.grpc_port} ..." in server.log()


def test_bind_address_all_interfaces_unix_socket_and_channel_arguments(
    serve, half_plus_two: Path, tmp_path: Path
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "1").symlink_to(half_plus_two)
    socket_path = tmp_path / "tfs.sock"
    server = serve(
        "--model_name=m",
        f"--model_base_path={tmp_path / 'm'}",
        "--bind_address=0.0.0.0",
        f"--port={_free_port()}",  # --port=0 with a socket path is "UNIX socket only", as upstream
        f"--grpc_socket_path={socket_path}",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=60000,grpc.lb_policy_name=grpclb",
    )
    assert _listening(server.process.pid, server.grpc_port) == {"any"}
    assert _listening(server.process.pid, server.rest_port) == {"any"}
    assert _versions(f"unix:{socket_path}") == [1]
    assert f"Running gRPC ModelServer at UNIX socket {socket_path} ..." in server.log()


def test_standin_binary_listens_on_all_interfaces(half_plus_two: Path, tmp_path: Path) -> None:
    """The stand-in image's tensorflow_model_server script passes --bind_address=0.0.0.0, so published
    container ports reach it (run here with this interpreter in place of the image's venv)."""
    import sys

    from pytest_tfserving.embedded.launch import start_server
    from pytest_tfserving.images.recipe import MODEL_SERVER_SCRIPT, VENV

    script = tmp_path / "tensorflow_model_server"
    script.write_text(MODEL_SERVER_SCRIPT.replace(f"{VENV}/bin/python", sys.executable))
    script.chmod(0o755)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "1").symlink_to(half_plus_two)
    server = start_server(
        [
            str(script),
            "--port=0",
            "--rest_api_port=0",
            "--model_name=m",
            f"--model_base_path={tmp_path / 'm'}",
        ]
    )
    try:
        assert _listening(server.process.pid, server.grpc_port) == {"any"}
        assert _listening(server.process.pid, server.rest_port) == {"any"}
    finally:
        server.stop()
