"""Our REST closed loop at saturation against ``wrk`` on the same endpoint (goal: >= 0.8x wrk req/s).

Same embedded server (tiny model), same body, same number of keep-alive connections; wrk, our loop
with its lean HTTP/1.1 client and our loop on aiohttp run in alternating rounds so drift hits all
three. wrk (Debian package ``wrk``) POSTs through a small Lua script. Prints req/s of each round and
the ratios of medians. Without wrk it stops at once (exit 2) with the command that installs it.

    sudo apt-get install wrk    # once; macOS: brew install wrk
    .venv/bin/python benchmarks/load_vs_wrk.py [--connections 8] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.load import LoadConfig, PayloadOptions, StabilityRule, clients, measure
from pytest_tfserving.load.payloads import build_pool, fetch_signature
from pytest_tfserving.models.tiny import export_tiny_model_in_child

WRK_MISSING = (
    "load_vs_wrk: wrk is not on PATH, and this benchmark measures our load loop against it. Install it "
    "with: sudo apt-get install wrk (Debian/Ubuntu; macOS: brew install wrk), then run this again."
)
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("WRK_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def run_wrk(url: str, connections: int, seconds: int, script: Path, body: Path) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_BODY": str(body)},
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out.stdout}\n{out.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    return float(match.group(1)), f"non-2xx {bad.group(1)}" if bad else "all 2xx"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "m"
        export_tiny_model_in_child(models / "1")
        server = start_server(
            embedded_command(
                "--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={models}"
            ),
            timeout_s=300,
        )
        try:
            signature = fetch_signature(server.rest_url, "rest", "tiny")
            body = Path(tmp) / "body.json"
            body.write_bytes(
                build_pool(signature, "rest", "tiny", "serving_default", PayloadOptions(pool_size=1)).body(0)
            )
            script = Path(tmp) / "post.lua"
            script.write_text(LUA)
            url = f"{server.rest_url}/v1/models/tiny:predict"
            run_wrk(url, args.connections, 2, script, body)  # warm-up
            ours, theirs, aio = [], [], []

            def ours_rps(lean: bool) -> tuple[float, str]:
                clients.LEAN_HTTP = lean
                config = LoadConfig(
                    server.rest_url,
                    "tiny",
                    protocol="rest",
                    concurrency=args.connections,
                    signature=signature,
                    payloads=PayloadOptions(pool_size=1),
                )
                m = measure(
                    config,
                    warmup_s=1.0,
                    window_s=1.0,
                    rule=StabilityRule(min_windows=args.seconds, max_windows=args.seconds),
                )
                return m.rps, (f"errors {m.errors}, p50 {m.p50_ms:.2f} ms, "
                               f"loop CPU {m.extra['client_loop_cpu_max']:.2f}")

            for r in range(args.rounds):
                rps, note = run_wrk(url, args.connections, args.seconds, script, body)
                theirs.append(rps)
                lean, lean_note = ours_rps(True)
                ours.append(lean)
                slow, slow_note = ours_rps(False)
                aio.append(slow)
                print(
                    f"round {r}: wrk {rps:8.1f} req/s ({note}); ours {lean:8.1f} req/s ({lean_note}); "
                    f"ours on aiohttp {slow:8.1f} req/s ({slow_note})"
                )
        finally:
            clients.LEAN_HTTP = True
            server.stop()
    wrk_median = statistics.median(theirs)
    print(
        f"median: ours {statistics.median(ours):.1f} / wrk {wrk_median:.1f} req/s "
        f"= {statistics.median(ours) / wrk_median:.2f}x (goal >= 0.8x); ours on aiohttp "
        f"{statistics.median(aio):.1f} req/s = {statistics.median(aio) / wrk_median:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
