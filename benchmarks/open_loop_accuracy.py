"""Open-loop accuracy: achieved request rate against the target rate (goal: within 2 %).

Starts the embedded server with the tiny model, runs constant and Poisson open loops at a few rates
(gRPC), and prints target, sent and completed rates with their ratio to the target. The machine may be
shared: the script prints the load average so a noisy result can be recognized.

    .venv/bin/python benchmarks/open_loop_accuracy.py [--rates 50 200 500] [--windows 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.models.tiny import export_tiny_model_in_child


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 200.0, 500.0])
    parser.add_argument("--windows", type=int, default=5, help="1 s windows per run (default 5)")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        export_tiny_model_in_child(Path(tmp) / "1")
        server = start_server(
            embedded_command(
                "--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={tmp}"
            ),
            timeout_s=300,
        )
        try:
            print(
                f"{'arrival':9} {'target':>7} {'sent/s':>8} {'ratio':>6} {'done/s':>8} {'ratio':>6} "
                f"{'p50 ms':>7} {'saturated':>9}"
            )
            for rate in args.rates:
                for arrival in ("constant", "poisson"):
                    m = measure(
                        LoadConfig(server.grpc_target, "tiny", mode="open", rate=rate, arrival=arrival),
                        warmup_s=1.0,
                        window_s=1.0,
                        rule=StabilityRule(min_windows=args.windows, max_windows=args.windows),
                    )
                    sent = m.extra["sent_rps"]
                    print(
                        f"{arrival:9} {rate:7.0f} {sent:8.1f} {sent / rate:6.3f} "
                        f"{m.rps:8.1f} {m.rps / rate:6.3f} "
                        f"{m.p50_ms:7.2f} {m.client_saturated!s:>9}"
                    )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
