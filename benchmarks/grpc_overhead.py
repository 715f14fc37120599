"""Client-side overhead of the gRPC load generator: client p50 minus server-side p50 (goal <= 0.3 ms).

Concurrency 1 against the embedded server with the tiny model and Prometheus monitoring on. The server
side comes from ``:tensorflow:serving:request_latency`` (per-window deltas): its p50 is interpolated in
coarse buckets, so the mean difference (exact ``_sum``/``_count``) is printed too. What remains is the
client library, the loopback network and the server's gRPC layer outside its timer.

The floor of that gap is measured in the same rounds: a zero-work Python gRPC server (same grpcio,
same thread-pool server as the embedded one, a precomputed PredictResponse, the tiny model's
signature for GetModelMetadata), loaded by the same client. Its whole round trip is what any Python
server plus our client cost here before a single line of serving runs; the embedded gap minus that
floor is what our server adds outside its timer.

The client's own share is measured against a zero-work C++ gRPC server (benchmarks/native/, built here
from Debian's libgrpc++-dev, the gRPC stack tensorflow_model_server runs on) answering the same canned
bytes: it does no serving work, so its server-side time is ~0 and our client's whole round trip against
it bounds the gap "client p50 minus server-side p50" from above, as it would be measured against
tensorflow_model_server. Without g++ and libgrpc++-dev that row is skipped, with the install command.

    .venv/bin/python benchmarks/grpc_overhead.py [--windows 8] [--rounds 3]
    # against real tensorflow_model_server (C++ gRPC), where Docker is available:
    .venv/bin/python benchmarks/grpc_overhead.py --target 127.0.0.1:8500 \
        --metrics-url http://127.0.0.1:8501/monitoring/prometheus/metrics --model tiny
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.metrics.prometheus import DEFAULT_PATH, PrometheusScraper
from pytest_tfserving.models.tiny import export_tiny_model_in_child
from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch
from pytest_tfserving.process.wait import LogLineWait

PORT_PRINTER_TIMEOUT_S = 120.0  # a Python gRPC server importing TF Serving's protos on a busy machine


def sync_client_p50_ms(target: str, model: str, requests: int = 1500) -> float:
    """Reference: the same request from a plain blocking grpc stub, no asyncio."""
    import time

    import grpc

    from pytest_tfserving.load.payloads import PayloadOptions, build_pool, fetch_signature
    from pytest_tfserving.load.wire import PREDICT_METHOD

    pool = build_pool(
        fetch_signature(target, "grpc", model),
        "grpc",
        model,
        "serving_default",
        PayloadOptions(pool_size=64),
    )
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(PREDICT_METHOD)
        times = []
        for i in range(requests):
            t0 = time.perf_counter()
            call(pool.body(i), timeout=10)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[100:]) * 1000.0


def canned_responses(model_dir: Path) -> tuple[Any, Any]:
    """The tiny model's PredictResponse (fixed values) and GetModelMetadataResponse, as protos."""
    import numpy as np
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

    from pytest_tfserving.embedded.servables import read_signature_defs
    from pytest_tfserving.embedded.tensors import to_proto

    response = predict_pb2.PredictResponse()
    response.model_spec.name = "tiny"
    response.model_spec.version.value = 1
    response.model_spec.signature_name = "serving_default"
    response.outputs["output_0"].CopyFrom(to_proto(np.full((1, 10), 0.1, dtype=np.float32)))
    metadata = get_model_metadata_pb2.GetModelMetadataResponse()
    metadata.model_spec.name = "tiny"
    metadata.model_spec.version.value = 1
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sdef in read_signature_defs(model_dir, {"serve"}).items():
        sig_map.signature_def[key].CopyFrom(sdef)
    metadata.metadata["signature_def"].Pack(sig_map)
    return response, metadata


def serve_floor(model_dir: str) -> None:
    """Child process: the zero-work PredictionService; prints its port, serves until killed."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    response, metadata = canned_responses(Path(model_dir))

    class Floor(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:
            return response

        def GetModelMetadata(self, request: Any, context: Any) -> Any:
            return metadata

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Floor(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def start_port_printer(command: list[str], what: str, log_path: Path) -> tuple[ManagedProcess, str]:
    """Start a server that prints its port alone on a stdout line; returns it and its target."""
    port = LogLineWait(re.compile(r"^(?P<port>\d+)$", re.MULTILINE), f"the port {what} prints")
    process = launch(Launch(command, log_path, port, name=what), PORT_PRINTER_TIMEOUT_S, poll_s=0.05)
    return process, f"127.0.0.1:{port.group('port')}"


NATIVE = Path(__file__).parent / "native"


def build_native(workdir: Path, name: str) -> tuple[Path | None, str]:
    """Compile benchmarks/native/<name>.cc; (binary, "") or (None, why not and how to fix it)."""
    try:
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None, "no grpc++ for pkg-config: apt-get install g++ pkg-config libgrpc++-dev"
    binary = workdir / name
    built = subprocess.run(
        ["g++", "-O2", "-std=c++17", str(NATIVE / f"{name}.cc"), *flags, "-o", str(binary)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        return None, f"g++ failed: {built.stderr[-800:]}"
    return binary, ""


def native_client_p50_ms(binary: Path, target: str, model: str, workdir: Path, requests: int = 3000) -> float:
    """The C++ blocking client's median round trip for the same Predict body our clients send."""
    from pytest_tfserving.load.payloads import PayloadOptions, build_pool, fetch_signature
    from pytest_tfserving.load.wire import PREDICT_METHOD

    pool = build_pool(
        fetch_signature(target, "grpc", model), "grpc", model, "serving_default", PayloadOptions(pool_size=1)
    )
    body = workdir / "request.bin"
    body.write_bytes(pool.body(0))
    done = subprocess.run(
        [str(binary), target, PREDICT_METHOD, str(body), str(requests)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def start_native_floor(workdir: Path, model_dir: Path) -> tuple[ManagedProcess | None, str]:
    """The C++ zero-work server with the tiny model's canned responses; (None, why) when unbuildable."""
    binary, why = build_native(workdir, "zero_grpc_server")
    if binary is None:
        return None, why
    response, metadata = canned_responses(model_dir)
    (workdir / "predict.bin").write_bytes(response.SerializeToString())
    (workdir / "metadata.bin").write_bytes(metadata.SerializeToString())
    return start_port_printer(
        [str(binary), str(workdir / "predict.bin"), str(workdir / "metadata.bin")],
        "C++ zero-work server",
        workdir / "native-floor.log",
    )


def at_concurrency_1(target: str, model: str, windows: int, **more: Any) -> Measurement:
    """Our client, one request in flight, 1 s warm-up and ``windows`` 1-s windows."""
    return measure(
        LoadConfig(target, model, concurrency=1, **more),
        warmup_s=1.0,
        window_s=1.0,
        rule=StabilityRule(min_windows=windows, max_windows=windows),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=8, help="1 s windows per round (default 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-floor", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--target",
        help="gRPC HOST:PORT of a running server (e.g. tensorflow/serving in Docker, started with "
        "--monitoring_config_file) to measure instead of starting ours",
    )
    parser.add_argument("--metrics-url", help="with --target: its Prometheus metrics URL")
    parser.add_argument("--model", default="tiny", help="with --target: the served model (default tiny)")
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return 0
    if args.target and not args.metrics_url:
        parser.error("--target needs --metrics-url http://HOST:8501/monitoring/prometheus/metrics")
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        models, monitoring = Path(tmp) / "m", Path(tmp) / "monitoring.config"
        export_tiny_model_in_child(models / "1")
        monitoring.write_text(f'prometheus_config {{ enable: true, path: "{DEFAULT_PATH}" }}\n')
        server = None
        if args.target:
            target, metrics_url, model, label = args.target, args.metrics_url, args.model, args.target
        else:
            server = start_server(
                embedded_command(
                    "--port=0",
                    "--rest_api_port=0",
                    "--model_name=tiny",
                    f"--model_base_path={models}",
                    f"--monitoring_config_file={monitoring}",
                ),
                timeout_s=300,
            )
            target, metrics_url = server.grpc_target, server.rest_url + DEFAULT_PATH
            model, label = "tiny", "embedded"
        floor, floor_target = start_port_printer(
            [sys.executable, __file__, "--serve-floor", str(models / "1")],
            "zero-work Python server",
            Path(tmp) / "python-floor.log",
        )
        native, native_target = start_native_floor(Path(tmp), models / "1")
        native_client, _ = build_native(Path(tmp), "grpc_ping_client") if native else (None, "")
        if native is None:
            print(f"C++ zero-work server skipped: {native_target}")
        try:
            scraper = PrometheusScraper(metrics_url, labels={"model_name": model})
            p50_gaps, mean_gaps, sync_p50, ours_p50, floor_p50 = [], [], [], [], []
            native_p50, native_sync_p50, cpp_p50 = [], [], []
            for r in range(args.rounds):
                if native is not None:
                    n = at_concurrency_1(native_target, "tiny", args.windows)
                    native_p50.append(n.p50_ms)
                    native_sync_p50.append(sync_client_p50_ms(native_target, "tiny"))
                    if native_client is not None:
                        cpp_p50.append(native_client_p50_ms(native_client, native_target, "tiny", Path(tmp)))
                    print(
                        f"round {r}: C++ zero-work server: our client p50 {n.p50_ms:.3f} ms "
                        f"(mean {n.mean_ms:.3f}, {n.rps:.0f} req/s, {n.errors} errors), blocking grpc "
                        f"client p50 {native_sync_p50[-1]:.3f} ms, C++ client p50 "
                        f"{cpp_p50[-1] if cpp_p50 else float('nan'):.3f} ms"
                    )
                f = at_concurrency_1(floor_target, "tiny", args.windows)
                floor_p50.append(f.p50_ms)
                sync_p50.append(sync_client_p50_ms(target, model))
                m = at_concurrency_1(target, model, args.windows, server_latency=scraper.scrape)
                assert m.server_p50_ms is not None and m.server_mean_ms is not None
                p50_gaps.append(m.p50_ms - m.server_p50_ms)
                ours_p50.append(m.p50_ms)
                mean_gaps.append(m.mean_ms - m.server_mean_ms)
                print(
                    f"round {r}: client p50 {m.p50_ms:.3f} ms, server p50 {m.server_p50_ms:.3f} ms "
                    f"-> {p50_gaps[-1]:.3f} ms; client mean {m.mean_ms:.3f}, server mean "
                    f"{m.server_mean_ms:.3f} -> {mean_gaps[-1]:.3f} ms; {m.rps:.0f} req/s, "
                    f"loop CPU {m.extra['client_loop_cpu_max']:.2f}; "
                    f"blocking grpc client p50 {sync_p50[-1]:.3f} ms; zero-work Python server "
                    f"round trip p50 {floor_p50[-1]:.3f} ms"
                )
        finally:
            for child in (floor, native):
                if child is not None:
                    child.stop()
            if server is not None:
                server.stop()
    print(
        f"median over rounds: p50 gap {statistics.median(p50_gaps):.3f} ms, mean gap "
        f"{statistics.median(mean_gaps):.3f} ms (goal <= 0.3 ms); blocking grpc client p50 "
        f"{statistics.median(sync_p50):.3f} ms vs ours {statistics.median(ours_p50):.3f} ms\n"
        f"floor: our client against a zero-work Python gRPC server, p50 "
        f"{statistics.median(floor_p50):.3f} ms; the {label} gap beyond that floor "
        f"{statistics.median(p50_gaps) - statistics.median(floor_p50):.3f} ms"
    )
    if native_p50:
        ours, stub = statistics.median(native_p50), statistics.median(native_sync_p50)
        print(
            f"against the zero-work C++ gRPC server (server-side time ~0, so the round trip is the gap "
            f"'client p50 minus server p50'; goal <= 0.3 ms): our client {ours:.3f} ms, a blocking "
            f"Python grpc stub {stub:.3f} ms"
        )
        if cpp_p50:
            floor_cpp = statistics.median(cpp_p50)
            print(
                f"  a C++ client {floor_cpp:.3f} ms: loopback plus C++ gRPC on both sides, what no "
                f"client goes below here; our client adds {ours - floor_cpp:.3f} ms to it, a blocking "
                f"Python stub {stub - floor_cpp:.3f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
