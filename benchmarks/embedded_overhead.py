"""Latency the embedded server adds per request over calling the same model in-process.

Concurrency 1, one (1, 8, 8, 3) image per request, the tiny model. Direct calls, gRPC Predict and
REST :predict are measured in interleaved rounds in one run, so machine noise hits all three alike.
Prints median and p99 of each and the server's added latency (server minus direct).

    .venv/bin/python benchmarks/embedded_overhead.py [--requests 1000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel


def _stats(samples_us: list[float]) -> tuple[float, float]:
    array = np.asarray(samples_us)
    return float(np.median(array)), float(np.percentile(array, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per path (default 1000)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "tiny"
        export_savedmodel(build_tiny_cnn(seed=0), base / "1")
        server = start_server(
            embedded_command(
                "--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={base}"
            )
        )
        try:
            image = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
            function = tf.saved_model.load(str(base / "1")).signatures["serving_default"]

            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(image))
            channel = grpc.insecure_channel(server.grpc_target)
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            body = json.dumps({"instances": image.tolist()})
            conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)

            def direct() -> None:
                function(images=tf.constant(image))["output_0"].numpy()

            def via_grpc() -> None:
                stub.Predict(request, timeout=30)

            def via_rest() -> None:
                conn.request("POST", "/v1/models/tiny:predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(payload[:200])

            paths = {"direct": direct, "grpc": via_grpc, "rest": via_rest}
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
            conn.close()
            channel.close()
        finally:
            code = server.stop()
        if code != 0:
            print(f"server exited with {code}:\n{server.log()[-2000:]}", file=sys.stderr)

    d_med, d_p99 = _stats(samples["direct"])
    print(
        f"embedded server overhead, tiny model, concurrency 1, {per_round * args.rounds} requests/path, "
        f"{os.cpu_count()} CPUs, TF {tf.__version__}"
    )
    print(f"{'path':<8}{'median us':>12}{'p99 us':>12}{'added median':>15}{'added p99':>12}")
    print(f"{'direct':<8}{d_med:>12.0f}{d_p99:>12.0f}{'-':>15}{'-':>12}")
    for name in ("grpc", "rest"):
        med, p99 = _stats(samples[name])
        print(f"{name:<8}{med:>12.0f}{p99:>12.0f}{med - d_med:>15.0f}{p99 - d_p99:>12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
