"""Latency the embedded server adds per request over calling the same model in-process, and what the
session-based SavedModelServable gains over the old eager signature-function path.

Concurrency 1, one (1, 8, 8, 3) image per request, the tiny model. Two servers run side by side: ours
("session": SavedModelServable as shipped) and the same server with the old eager servable patched in
("eager", kept here only for comparison). Direct in-process calls of both servables, gRPC Predict and
REST :predict against both servers are measured in interleaved rounds in one run, so machine noise
hits all of them alike. Prints median and p99 of each, the added latency (server minus its own direct
call), then closed-loop gRPC throughput at concurrency 8 (pytest_tfserving.load.measure), alternating
between the two servers.

    .venv/bin/python benchmarks/embedded_overhead.py [--requests 1000] [--rounds 10] [--c8-rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from pytest_tfserving.embedded import servables
from pytest_tfserving.embedded.errors import invalid
from pytest_tfserving.embedded.launch import ServerProcess, start_server
from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

SERVE_EAGER = "--serve-eager"


class EagerServable:
    """The servable before issue #6: TF2 concrete signature functions called eagerly (comparison only)."""

    def __init__(self, path: Path, version: int, tags: tuple[str, ...] = ("serve",)) -> None:
        self.version = version
        self.path = path
        self.signature_defs = servables.read_signature_defs(path, set(tags))
        self._loaded = tf.saved_model.load(str(path), tags=list(tags))
        self._functions = dict(self._loaded.signatures)
        self.signatures = {
            key: servables.Signature(
                key,
                {k: servables.TensorSpec.from_info(v) for k, v in sig.inputs.items()},
                {k: servables.TensorSpec.from_info(v) for k, v in sig.outputs.items()},
            )
            for key, sig in self.signature_defs.items()
            if key in self._functions
        }

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        function = self._functions[signature]
        try:
            outputs = function(**{k: tf.convert_to_tensor(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise invalid(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
        return {k: v.numpy() for k, v in outputs.items()}

    def close(self) -> None:
        self._functions.clear()


def _serve_eager(flags: list[str]) -> None:
    """Run our server with EagerServable in place of SavedModelServable (main.py imports it lazily)."""
    from pytest_tfserving.embedded.main import main as server_main

    servables.SavedModelServable = EagerServable  # type: ignore[misc,assignment]
    code = server_main(flags)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start(base: Path, eager: bool) -> ServerProcess:
    flags = ["--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={base}"]
    prefix = (
        [sys.executable, __file__, SERVE_EAGER]
        if eager
        else [sys.executable, "-m", "pytest_tfserving.embedded"]
    )
    return start_server([*prefix, *flags])


def _stats(samples_us: list[float]) -> tuple[float, float]:
    array = np.asarray(samples_us)
    return float(np.median(array)), float(np.percentile(array, 99))


def _paths(server: ServerProcess, image: np.ndarray, closers: list[Callable[[], None]]) -> tuple[Any, Any]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(image))
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    body = json.dumps({"instances": image.tolist()})
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    closers += [channel.close, conn.close]

    def via_grpc() -> None:
        stub.Predict(request, timeout=30)

    def via_rest() -> None:
        conn.request("POST", "/v1/models/tiny:predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload[:200])

    return via_grpc, via_rest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per path (default 1000)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument(
        "--c8-rounds",
        type=int,
        default=2,
        help="concurrency-8 runs per server, alternating (default 2; 0 = skip)",
    )
    parser.add_argument(
        "--c8-seconds", type=float, default=3.0, help="measured seconds per c=8 run (default 3)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "tiny"
        export_savedmodel(build_tiny_cnn(seed=0), base / "1")
        servers: dict[str, ServerProcess] = {}
        closers: list[Callable[[], None]] = []
        try:
            servers["session"] = _start(base, eager=False)
            servers["eager"] = _start(base, eager=True)
            image = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
            session_servable = servables.SavedModelServable(base / "1", 1)
            eager_servable = EagerServable(base / "1", 1)
            closers.append(session_servable.close)
            feed = {"images": image}

            paths: dict[str, Callable[[], object]] = {
                "direct session": lambda: session_servable.run("serving_default", feed),
                "direct eager": lambda: eager_servable.run("serving_default", feed),
            }
            for variant, server in servers.items():
                via_grpc, via_rest = _paths(server, image, closers)
                paths[f"grpc {variant}"] = via_grpc
                paths[f"rest {variant}"] = via_rest
            for call in paths.values():  # warm up every path (graph build, connections)
                for _ in range(50):
                    call()
            samples: dict[str, list[float]] = {name: [] for name in paths}
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for name, call in paths.items():
                    for _ in range(per_round):
                        start = time.perf_counter()
                        call()
                        samples[name].append((time.perf_counter() - start) * 1e6)

            rps: dict[str, list[float]] = {variant: [] for variant in servers}
            for _ in range(args.c8_rounds):
                for variant, server in servers.items():
                    m = measure(
                        LoadConfig(server.grpc_target, "tiny", concurrency=8),
                        warmup_s=1.0,
                        window_s=args.c8_seconds,
                        rule=StabilityRule(min_windows=1, max_windows=1),
                    )
                    if m.errors:
                        raise RuntimeError(f"{variant}: {m.errors} errors at c=8: {m.errors_by_status}")
                    rps[variant].append(m.rps)
        finally:
            for close in closers:
                close()
            codes = {variant: server.stop() for variant, server in servers.items()}
        for variant, code in codes.items():
            if code != 0:
                print(
                    f"{variant} server exited with {code}:\n{servers[variant].log()[-2000:]}", file=sys.stderr
                )

    print(
        f"embedded server overhead, tiny model, concurrency 1, {per_round * args.rounds} requests/path, "
        f"{os.cpu_count()} CPUs, TF {tf.__version__}"
    )
    print(f"{'path':<16}{'median us':>12}{'p99 us':>12}{'added median':>15}{'added p99':>12}")
    direct = {variant: _stats(samples[f"direct {variant}"]) for variant in servers}
    for variant in servers:
        d_med, d_p99 = direct[variant]
        print(f"{'direct ' + variant:<16}{d_med:>12.0f}{d_p99:>12.0f}{'-':>15}{'-':>12}")
    for proto in ("grpc", "rest"):
        for variant in servers:
            med, p99 = _stats(samples[f"{proto} {variant}"])
            d_med, d_p99 = direct[variant]
            print(
                f"{proto + ' ' + variant:<16}{med:>12.0f}{p99:>12.0f}{med - d_med:>15.0f}{p99 - d_p99:>12.0f}"
            )
    print("session / eager median ratio:")
    for kind in ("direct", "grpc", "rest"):
        ratio = _stats(samples[f"{kind} session"])[0] / _stats(samples[f"{kind} eager"])[0]
        print(f"  {kind:<8}{ratio:>6.2f}")
    if args.c8_rounds:
        print(f"gRPC closed loop, concurrency 8, {args.c8_seconds:.0f} s per run, req/s per run:")
        for variant, values in rps.items():
            runs = ", ".join(f"{v:.0f}" for v in values)
            print(f"  {variant:<8} median {float(np.median(values)):>7.0f}  ({runs})")
        print(f"  session / eager: {float(np.median(rps['session'])) / float(np.median(rps['eager'])):.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == SERVE_EAGER:
        _serve_eager(sys.argv[2:])
    raise SystemExit(main())
