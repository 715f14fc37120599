"""The docker backend for real, where an engine answers (Docker, or Podman via DOCKER_HOST)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import ServerCrashed
from pytest_tfserving.backends.docker import DockerBackend
from pytest_tfserving.backends.engine import engine_status, image_status
from pytest_tfserving.process import cleanup
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

_engine_ok, _engine_detail = engine_status()
pytestmark = pytest.mark.skipif(not _engine_ok, reason=f"docker backend: {_engine_detail}")


@pytest.fixture(scope="module")
def backend() -> DockerBackend:
    chosen = DockerBackend(image=os.environ.get("PYTEST_TFSERVING_TEST_SERVING_IMAGE"))
    usable, detail = image_status(chosen.image)
    if not usable:
        pytest.skip(f"docker backend: {detail} (docker pull {chosen.image} where a registry is reachable)")
    return chosen


@pytest.mark.usefixtures("ryuk_or_disabled")
def test_container_serves_the_model_and_is_removed(
    backend: DockerBackend, tiny_model_dir: Path, tmp_path: Path
) -> None:
    spec = ServerSpec(models=(ModelSpec("tiny", tiny_model_dir),))
    server = backend.start(spec, tmp_path, 180.0)
    try:
        assert server.endpoints.rest_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.endpoints.rest_url}/v1/models/tiny", timeout=10) as r:
            assert json.loads(r.read())["model_version_status"][0]["state"] == "AVAILABLE"
        server.check_alive()
        assert server.description == backend.image
        sampler = server.resource_sampler()
        sampler.sample()
        assert sampler.sample().rss_mb > 1.0
        wrapped = server.container.get_wrapped_container()
        bindings = wrapped.attrs["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for v in bindings.values() for b in v} == {"127.0.0.1"}
        mounts = {m["Destination"]: m["RW"] for m in wrapped.attrs["Mounts"]}
        assert mounts["/config"] is False and mounts["/models/tiny"] is False
        wrapped.kill()
        with pytest.raises(ServerCrashed):
            server.check_alive()
    finally:
        server.stop()
    assert server not in cleanup.registered()
    import docker

    client = docker.from_env()
    try:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(wrapped.id)
    finally:
        client.close()


@pytest.mark.usefixtures("ryuk_or_disabled")
def test_start_failure_carries_the_container_log(backend: DockerBackend, tmp_path: Path) -> None:
    # A real flag both servers refuse at start (a typo is refused earlier, when the spec is built).
    spec = ServerSpec(models=(ModelSpec("tiny", tmp_path / "empty"),),
                      extra_flags=("--tensorflow_session_config_file=/does/not/exist",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="container log"):
        backend.start(spec, tmp_path, 60.0)
