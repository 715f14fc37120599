"""The readiness lines a model server prints once a port accepts connections, written and parsed here.

tensorflow_model_server prints them; the embedded server prints the same text with ``grpc_line`` and
``rest_line``, so one pair of patterns finds the ports of either:

    Running gRPC ModelServer at 0.0.0.0:PORT ...
    Exporting HTTP/REST API at:localhost:PORT ...
"""

from __future__ import annotations

import re

GRPC_PREFIX = "Running gRPC ModelServer at "
REST_PREFIX = "Exporting HTTP/REST API at:"

# Lenient about the host part ("0.0.0.0", "[::]", "localhost") and a space after "at:".
GRPC_READY = re.compile(re.escape(GRPC_PREFIX) + r"\S*?:(?P<port>\d+)")
REST_READY = re.compile(re.escape(REST_PREFIX.rstrip(":")) + r":?\s*\S*?:(?P<port>\d+)")


def grpc_line(port: int) -> str:
    return f"{GRPC_PREFIX}0.0.0.0:{port} ..."


def rest_line(port: int) -> str:
    return f"{REST_PREFIX}localhost:{port} ..."
