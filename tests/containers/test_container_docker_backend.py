"""The docker backend (pytest_tfserving.backends.docker) end to end on the stand-in image:
generated flags and config files, read-only mounts, loopback ports, readiness, predictions,
docker-stats sampling, the container log in start errors, fp32 and TFLite variants, removal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.images.recipe import ImageRefs
from pytest_tfserving.serving.spec import ServerSpec
from tests.containers.standin_helpers import RestLoad, grpc_predict, rest_predict

STARTUP_TIMEOUT_S = 120.0


@pytest.fixture()
def backend(standin: ImageRefs) -> Any:
    from pytest_tfserving.backends.docker import DockerBackend

    return DockerBackend(image=standin.server)


def test_fp32_savedmodel_serves_with_generated_flags_and_is_removed(
    engine: Any,
    backend: Any,
    model_root: Path,
    tmp_path: Path,
    reference_batch: tuple[np.ndarray, np.ndarray],
) -> None:
    import docker.errors

    inputs, expected = reference_batch
    spec = ServerSpec.single("tiny", model_root / "tiny", intra_op=1, inter_op=1, rest_api_num_threads=2)
    started = time.monotonic()
    server = backend.start(spec, tmp_path, STARTUP_TIMEOUT_S)
    try:
        assert time.monotonic() - started < STARTUP_TIMEOUT_S
        wrapped = server.container.get_wrapped_container()
        wrapped.reload()
        args = wrapped.attrs["Args"] if "Args" in wrapped.attrs else wrapped.attrs["Config"]["Cmd"]
        assert any(a.startswith("--model_config_file=/config/") for a in args), args
        assert "--tensorflow_intra_op_parallelism=1" in args, args
        mounts = {m["Destination"]: m["RW"] for m in wrapped.attrs["Mounts"]}
        assert mounts["/models/tiny"] is False and mounts["/config"] is False
        for endpoint in (server.endpoints.grpc_target, server.endpoints.rest_url):
            assert "127.0.0.1:" in endpoint

        np.testing.assert_allclose(
            grpc_predict(server.endpoints.grpc_target, "tiny", inputs), expected, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            rest_predict(server.endpoints.rest_url, "tiny", inputs), expected, rtol=1e-5, atol=1e-6
        )

        sampler = server.resource_sampler()
        sampler.sample()
        with RestLoad(server.endpoints.rest_url, "tiny", inputs) as load:
            time.sleep(2.0)
        busy = sampler.sample()
        sampler.close()
        assert not load.errors and load.requests > 0
        assert busy.cpu_percent > 1.0 and busy.rss_mb > 50.0, busy
        server.check_alive()
    finally:
        server.stop()
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(wrapped.id)


def test_tflite_variant_is_served_from_model_tflite(
    backend: Any, model_root: Path, tmp_path: Path, reference_batch: tuple[np.ndarray, np.ndarray]
) -> None:
    inputs, expected = reference_batch
    spec = ServerSpec.single("tiny_fp16", model_root / "tiny_fp16", variant="fp16")
    assert spec.prefer_tflite_model
    server = backend.start(spec, tmp_path, STARTUP_TIMEOUT_S)
    try:
        wrapped = server.container.get_wrapped_container()
        assert "--prefer_tflite_model=true" in wrapped.attrs["Config"]["Cmd"]
        got = grpc_predict(server.endpoints.grpc_target, "tiny_fp16", inputs)
        np.testing.assert_allclose(got, expected, atol=2e-2)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    finally:
        server.stop()


def test_broken_model_error_carries_the_container_log(
    engine: Any, backend: Any, model_root: Path, tmp_path: Path
) -> None:
    spec = ServerSpec.single("broken", model_root / "broken")
    from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

    def this_process() -> set[str]:
        return {
            c.id
            for c in engine.containers.list(all=True, filters={"label": f"{LABEL_SESSION_ID}={SESSION_ID}"})
        }

    before = this_process()
    with pytest.raises(BackendError) as caught:
        backend.start(spec, tmp_path, 25.0)
    message = str(caught.value)
    # TF Serving's own log line for a version that fails to load, read from the container's log.
    assert "Loading servable: {name: broken version: 1} failed" in message, message
    assert this_process() <= before, "the failed container was left behind"
