"""The stand-in TF Serving image through testcontainers directly: TF Serving's image contract
(entrypoint, MODEL_NAME/MODEL_BASE_PATH, ports 8500/8501, args appended), read-only model mounts,
loopback-only published ports, real gRPC/REST predictions and `docker stats` under load."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pytest_tfserving.images.recipe import ImageRefs
from pytest_tfserving.metrics.docker_stats import DockerStatsSampler
from pytest_tfserving.process.readiness import models_available
from tests.containers.standin_helpers import RestLoad, grpc_predict, labels, rest_predict, wait_available

STARTUP_TIMEOUT_S = 120.0


@contextmanager
def standin_server(image: str, model_dir: Path, model: str, args: Sequence[str] = ()) -> Iterator[Any]:
    """`docker run -e MODEL_NAME=<model> -v <dir>:/models/<model>:ro -p 127.0.0.1::8500 ... <image> args`."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image, command=list(args), env={"MODEL_NAME": model})  # type: ignore[arg-type]
    container.with_volume_mapping(str(model_dir), f"/models/{model}", "ro")
    container.ports["8500/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
    container.ports["8501/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
    container.with_kwargs(labels=labels())
    try:
        container.start()
        yield container
    finally:
        container.stop()


def urls(container: Any) -> tuple[str, str]:
    grpc_port = container.get_exposed_port(8500)
    rest_port = container.get_exposed_port(8501)
    return f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}"


def test_image_has_tf_servings_contract(engine: Any, standin: ImageRefs) -> None:
    config = engine.images.get(standin.server).attrs["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tf_serving_entrypoint.sh"]
    assert {"MODEL_NAME=model", "MODEL_BASE_PATH=/models"} <= set(config["Env"])
    assert {"8500/tcp", "8501/tcp"} <= set(config["ExposedPorts"])


def test_serves_savedmodel_over_grpc_and_rest_with_stats(
    engine: Any, standin: ImageRefs, model_root: Path, reference_batch: tuple[np.ndarray, np.ndarray]
) -> None:
    inputs, expected = reference_batch
    with standin_server(standin.server, model_root / "tiny", "tiny") as container:
        wrapped = container.get_wrapped_container()
        grpc_target, rest_url = urls(container)
        waited = wait_available(wrapped, rest_url, "tiny", STARTUP_TIMEOUT_S)
        assert waited < STARTUP_TIMEOUT_S

        np.testing.assert_allclose(grpc_predict(grpc_target, "tiny", inputs), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rest_predict(rest_url, "tiny", inputs), expected, rtol=1e-5, atol=1e-6)

        wrapped.reload()
        bindings = wrapped.attrs["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for v in bindings.values() for b in v} == {"127.0.0.1"}
        assert {m["Destination"]: m["RW"] for m in wrapped.attrs["Mounts"]}["/models/tiny"] is False

        sampler = DockerStatsSampler(wrapped)
        sampler.sample()  # primes the CPU counter
        with RestLoad(rest_url, "tiny", inputs) as load:
            time.sleep(2.0)
        busy = sampler.sample()
        assert not load.errors, load.errors
        assert load.requests > 0
        assert busy.cpu_percent > 1.0, busy
        assert busy.rss_mb > 50.0, busy  # TensorFlow and the model are resident


def test_serves_tflite_fp16_with_prefer_tflite_model(
    engine: Any, standin: ImageRefs, model_root: Path, reference_batch: tuple[np.ndarray, np.ndarray]
) -> None:
    inputs, expected = reference_batch
    args = ["--prefer_tflite_model=true"]
    with standin_server(standin.server, model_root / "tiny_fp16", "tiny_fp16", args) as container:
        grpc_target, rest_url = urls(container)
        wait_available(container.get_wrapped_container(), rest_url, "tiny_fp16", STARTUP_TIMEOUT_S)
        for got in (
            grpc_predict(grpc_target, "tiny_fp16", inputs),
            rest_predict(rest_url, "tiny_fp16", inputs),
        ):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=2e-2)  # fp16 weights: close, not equal
            assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_without_prefer_flag_a_tflite_only_model_is_not_served(
    engine: Any, standin: ImageRefs, model_root: Path
) -> None:
    """TF Serving ignores model.tflite unless --prefer_tflite_model=true: the stand-in must agree."""
    failed = "Loading servable: {name: tiny_fp16 version: 1} failed"
    with standin_server(standin.server, model_root / "tiny_fp16", "tiny_fp16") as container:
        wrapped = container.get_wrapped_container()
        _, rest_url = urls(container)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while failed not in (log := wrapped.logs().decode(errors="replace")):
            wrapped.reload()
            assert wrapped.status == "running", log[-3000:]
            assert time.monotonic() < deadline, f"no load failure logged:\n{log[-3000:]}"
            time.sleep(0.25)
        assert not models_available(rest_url, ["tiny_fp16"]), log[-3000:]
