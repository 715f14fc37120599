"""Free loopback ports for servers that cannot bind port 0 themselves (tensorflow_model_server, redis)."""

from __future__ import annotations

import socket


def free_loopback_port() -> int:
    """A port the kernel just handed out on 127.0.0.1, released again for the server to take.

    Another process can grab it in between (a bind race); callers retry with a fresh port when the
    server's log says the address is in use (``launcher.launch_on_free_ports``).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_loopback_ports(count: int) -> tuple[int, ...]:
    """``count`` distinct free ports (the kernel may hand out a just-released one twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_loopback_port()
        if port not in ports:
            ports.append(port)
    return tuple(ports)


def address_in_use(log_text: str) -> bool:
    """Whether a server log shows it lost a bind race (gRPC, Go/C++ servers and redis wordings)."""
    lowered = log_text.lower()
    return "address already in use" in lowered or "failed to bind" in lowered or "eaddrinuse" in lowered
