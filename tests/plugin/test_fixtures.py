"""The fixtures as users load them: a real embedded server answering gRPC and REST, the factory sharing
servers by spec, Redis flushed per test, every process stopped at session end, a missing model config
and a crashed server reported as errors that name the fix.

Starting an embedded server costs 10-25 s here, so one pytester run carries most checks.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc  # noqa: F401 - imported before the inline runs (see tests/plugin/conftest.py)
import numpy  # noqa: F401
import psutil
import pytest
import redis  # noqa: F401
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: F401

from tests.plugin.conftest import FAST_ARGS

FIXTURE_TESTS = """
import dataclasses
import json
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from pytest_tfserving.models.tiny import build_tiny_cnn

PIDS = Path(__file__).parent / "pids.txt"


def remember(kind, pid):
    with PIDS.open("a") as fh:
        fh.write(f"{kind} {pid}\\n")


def test_grpc_and_rest_predict_match_the_model(tfserving_server):
    remember("server", tfserving_server.pid)
    x = np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)
    expected = build_tiny_cnn()(x).numpy()  # the same seeded model the conftest serves

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
    with grpc.insecure_channel(tfserving_server.endpoints.grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    from_grpc = tf.make_ndarray(reply.outputs["output_0"])

    body = json.dumps({"instances": x.tolist()}).encode()
    http = urllib.request.Request(f"{tfserving_server.endpoints.rest_url}/v1/models/tiny:predict",
                                  data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(http, timeout=60) as response:
        from_rest = np.array(json.loads(response.read())["predictions"], dtype=np.float32)

    assert from_grpc.shape == from_rest.shape == (3, 10)
    np.testing.assert_allclose(from_grpc, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(from_rest, expected, rtol=1e-4, atol=1e-6)


def test_factory_shares_identical_specs_only(tfserving_server_factory, tfserving_spec, tfserving_server):
    assert tfserving_server_factory(tfserving_spec) is tfserving_server
    assert tfserving_server_factory(dataclasses.replace(tfserving_spec)) is tfserving_server
    other = tfserving_server_factory(dataclasses.replace(tfserving_spec, intra_op=2))
    remember("server", other.pid)
    assert other is not tfserving_server
    assert other.pid != tfserving_server.pid
    assert other.endpoints.grpc_target != tfserving_server.endpoints.grpc_target
    assert tfserving_server_factory(dataclasses.replace(tfserving_spec, intra_op=2)) is other


def test_redis_first_leaves_a_key(tfserving_redis, tfserving_redis_client):
    remember("redis", tfserving_redis.pid)
    tfserving_redis_client.set("left-behind", b"1")
    assert tfserving_redis_client.dbsize() == 1


def test_redis_second_starts_empty(tfserving_redis_client):
    assert tfserving_redis_client.dbsize() == 0
"""


def recorded_pids(path: Path) -> list[tuple[str, int]]:
    return [(kind, int(pid)) for kind, pid in (line.split() for line in path.read_text().splitlines())]


def is_ours_and_running(pid: int) -> bool:
    """True while ``pid`` is a live embedded server or redis-server (not a zombie, not a reused pid)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return False
    return "pytest_tfserving.embedded" in cmdline or "redis-server" in cmdline


def assert_all_gone(pids: list[tuple[str, int]], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [(kind, pid) for kind, pid in alive if is_ours_and_running(pid)]
        if alive:
            time.sleep(0.2)
    assert not alive, f"left running after the session: {alive}"


def test_servers_and_redis_in_one_session(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_user_fixtures=FIXTURE_TESTS)
    result = perf_project.runpytest(*FAST_ARGS, "--redis-backend=local", "-rA")
    result.assert_outcomes(passed=4)

    pids = recorded_pids(perf_project.path / "pids.txt")
    kinds = sorted(kind for kind, _ in pids)
    assert kinds == ["redis", "server", "server"], pids
    assert_all_gone(pids)


def test_missing_model_config_names_the_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_needs_a_model(tfserving_server):
            pass
        """
    )
    result = pytester.runpytest(
        "--tfserving-backend=embedded", "-p", "no:cacheprovider", "--tfserving-model-name=only-a-name"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*tfserving_server needs a model: set --tfserving-model-name and --tfserving-model-base-path*"
            "tfserving_spec*conftest.py*",
        ]
    )


CRASHES = """
import os
import signal
import threading

import pytest


@pytest.mark.perf
def test_crash_mid_measurement(tfserving_server, perf):
    killer = threading.Timer(1.0, os.kill, (tfserving_server.pid, signal.SIGKILL))
    killer.start()
    try:
        perf.measure(tfserving_server, warmup_s=0.3, window_s=0.5, min_windows=4, max_windows=4)
    finally:
        killer.join()


@pytest.mark.perf
def test_measure_a_dead_server(tfserving_server, perf):
    perf.measure(tfserving_server, warmup_s=0.3, window_s=0.5, min_windows=4, max_windows=4)
"""

CRASH_LINE = "*ServerCrashed: embedded server (pid *) exited with status -9; log *server.log, last lines:*"


def test_crashed_server_is_reported_as_the_crash(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_crash=CRASHES)
    result = perf_project.runpytest(*FAST_ARGS, "-rA")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*test_crash_mid_measurement*", CRASH_LINE, "*test_measure_a_dead_server*", CRASH_LINE]
    )
    result.stdout.no_fnmatch_line("*regression*")


def test_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider", "--tfserving-backend=embedded")
    assert result.ret == 0
    result.stdout.fnmatch_lines_random(
        [
            "tfserving_settings [[]session scope*",
            "*resolved plugin settings (CLI > ini > default)*",
            "tfserving_models [[]session scope*",
            "tfserving_server_factory [[]session scope*",
            "tfserving_spec [[]session scope*",
            "tfserving_server [[]session scope*",
            "tfserving_redis [[]session scope*",
            "tfserving_redis_client -- *",
            "perf -- *",
        ]
    )
