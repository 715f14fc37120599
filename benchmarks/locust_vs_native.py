"""The same closed loop through our generator and through Locust (1 and 2 workers), side by side.

Same server (the embedded one, tiny model, Prometheus on), same pre-serialized payload, same
concurrency, same windows; the engines alternate within each round so machine drift hits all of them.
Per engine: req/s, client p50, server p50 (Prometheus request_latency deltas of the load's own series)
and client p50 minus server p50, the part of the latency the client and the loopback add.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/locust_vs_native.py [--concurrency 4] [--windows 5]
        [--rounds 2] [--protocol grpc]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.load import LoadConfig, PayloadOptions, StabilityRule, measure
from pytest_tfserving.load.locust_engine import LocustOptions
from pytest_tfserving.load.locust_extra import locust_problem
from pytest_tfserving.load.payloads import fetch_signature
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.metrics.prometheus import DEFAULT_PATH, PrometheusScraper
from pytest_tfserving.models.tiny import export_tiny_model_in_child
from pytest_tfserving.serving.metric_labels import request_latency_labels

ENGINES = (("ours", "native", 1), ("locust 1 worker", "locust", 1), ("locust 2 workers", "locust", 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--windows", type=int, default=5, help="1-second windows per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    args = parser.parse_args()
    problem = locust_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}  protocol {args.protocol}, "
          f"concurrency {args.concurrency}, {args.windows} windows of 1 s, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        models, monitoring = Path(tmp) / "m", Path(tmp) / "monitoring.config"
        export_tiny_model_in_child(models / "1")
        monitoring.write_text(f'prometheus_config {{ enable: true, path: "{DEFAULT_PATH}" }}\n')
        server = start_server(
            embedded_command(
                "--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={models}",
                f"--monitoring_config_file={monitoring}",
            ),
            timeout_s=300,
        )
        try:
            target = server.grpc_target if args.protocol == "grpc" else server.rest_url
            signature = fetch_signature(target, args.protocol, "tiny")
            scraper = PrometheusScraper(server.rest_url + DEFAULT_PATH,
                                        labels=request_latency_labels("tiny", args.protocol))
            config = LoadConfig(
                target, "tiny", protocol=args.protocol, concurrency=args.concurrency, signature=signature,
                payloads=PayloadOptions(pool_size=1), server_latency=scraper.scrape,
            )
            results: dict[str, list[Measurement]] = {label: [] for label, _, _ in ENGINES}
            for r in range(args.rounds):
                order = ENGINES if r % 2 == 0 else tuple(reversed(ENGINES))
                for label, engine, workers in order:
                    m = measure(
                        config, engine=engine, workers=workers,
                        locust=LocustOptions(log_dir=Path(tmp) / f"logs-{r}-{workers}"),
                        warmup_s=1.0, window_s=1.0,
                        rule=StabilityRule(min_windows=args.windows, max_windows=args.windows),
                    )
                    results[label].append(m)
                    print(f"round {r} {label:17s} {m.rps:8.1f} req/s  client p50 {m.p50_ms:6.3f} ms  "
                          f"server p50 {m.server_p50_ms or float('nan'):6.3f} ms  errors {m.errors}  "
                          f"client CPU max {m.extra['client_loop_cpu_max']:.2f}")
        finally:
            server.stop()
    print(f"\nmedian over {args.rounds} rounds ({'req/s':>8s}, client p50, client p50 - server p50):")
    native_rps = statistics.median(m.rps for m in results["ours"])
    for label, _, _ in ENGINES:
        runs = results[label]
        rps = statistics.median(m.rps for m in runs)
        p50 = statistics.median(m.p50_ms for m in runs)
        gap = statistics.median(m.p50_ms - (m.server_p50_ms or float("nan")) for m in runs)
        print(f"  {label:17s} {rps:8.1f} req/s ({rps / native_rps:.2f}x ours)  p50 {p50:6.3f} ms  "
              f"client - server {gap:6.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
