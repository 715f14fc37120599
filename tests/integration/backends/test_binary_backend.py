"""The binary backend for real, where tensorflow_model_server is installed."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import ServerCrashed
from pytest_tfserving.backends.binary import BinaryBackend, find_binary
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

pytestmark = pytest.mark.skipif(
    find_binary() is None,
    reason="binary backend: tensorflow_model_server not on PATH (see tensorflow.org/tfx/serving/setup)",
)


def test_binary_serves_the_model_and_stops(tiny_model_dir: Path, tmp_path: Path) -> None:
    backend = BinaryBackend()
    spec = ServerSpec(models=(ModelSpec("tiny", tiny_model_dir),))
    server = backend.start(spec, tmp_path, 120.0)
    try:
        with urllib.request.urlopen(f"{server.endpoints.rest_url}/v1/models/tiny", timeout=10) as r:
            assert json.loads(r.read())["model_version_status"][0]["state"] == "AVAILABLE"
        assert server.description.startswith("tensorflow_model_server (")
        server.check_alive()
        os.kill(server.pid, signal.SIGKILL)
        server.process.popen.wait(timeout=30)
        with pytest.raises(ServerCrashed):
            server.check_alive()
    finally:
        server.stop()
