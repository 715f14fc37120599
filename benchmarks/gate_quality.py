"""How good is the regression gate? False alarms on A/A pairs, detection of real 5 % / 10 % slowdowns.

Real regressions, not sleeps: the "slow" models are ``build_tiny_cnn`` with extra dense layers, chosen
by a calibration step so their p50 is about 5 % and 10 % above the base model's, as measured here.

Running 100+ pairs of full measurements would take hours on a 2-core machine, so the script works
in two steps and says so in its output:

1. ``collect``: ROUNDS rounds; each starts a fresh embedded server serving all models and measures
   real runs (gRPC, closed loop, concurrency 1, 1 s windows): base, slow5, slow10, base, in a rotating
   order. Every run's windows are saved to a JSON file.
2. ``analyze``: builds pairs of *different real runs* (baseline run, current run), never windows
   resampled within a run, so run-to-run variance (server restarts, neighbours) is in the data.
   Each run is cut into chunks of K windows (K = the current-run length studied); A/A pairs are
   chunks of two different base runs, regression pairs are (base chunk, slow chunk). Prints the
   false-alarm rate, detection rate per effect size and tolerance, and seconds per verdict
   (warm-up + windows measured + judge time).

    python benchmarks/gate_quality.py collect --out /tmp/gate_runs.json --rounds 6
    python benchmarks/gate_quality.py analyze /tmp/gate_runs.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WARMUP_S = 2.0
WINDOW_S = 1.0


def _export_models(root: Path, layers: list[int]) -> dict[str, Path]:
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    paths = {}
    for n in layers:
        base = root / f"tiny_l{n}"
        if not (base / "1").exists():
            export_savedmodel(build_tiny_cnn(seed=0, extra_dense_layers=n), base / "1")
        paths[f"tiny_l{n}"] = base
    return paths


def _start(paths: dict[str, Path], workdir: Path) -> Any:
    from pytest_tfserving.backends.embedded import EmbeddedBackend
    from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

    spec = ServerSpec(models=tuple(ModelSpec(name, path) for name, path in sorted(paths.items())))
    return EmbeddedBackend().start(spec, workdir, startup_timeout_s=180)


def _run(server: Any, model: str, windows: int) -> dict[str, Any]:
    from pytest_tfserving.load.runner import measure

    m = measure(
        server.endpoints.grpc_target,
        model,
        protocol="grpc",
        concurrency=1,
        warmup_s=WARMUP_S,
        window_s=WINDOW_S,
        min_windows=windows,
        max_windows=windows,
    )
    return m.to_dict()


def calibrate(root: Path, workdir: Path, candidates: list[int], rounds: int) -> dict[int, float]:
    """p50 of each candidate relative to the base, from interleaved windows (drift hits both alike)."""
    from pytest_tfserving.load.runner import LoadConfig, measure_interleaved

    paths = _export_models(root, candidates)
    server = _start(paths, workdir)
    target = server.endpoints.grpc_target
    shifts = {0: 0.0}
    try:
        base = LoadConfig(target, "tiny_l0", concurrency=1)
        for n in candidates[1:]:
            a, b = measure_interleaved(
                LoadConfig(target, f"tiny_l{n}", concurrency=1),
                base,
                rounds=rounds,
                warmup_s=1.0,
                window_s=WINDOW_S,
            )
            ratios = [wa.p50_ms / wb.p50_ms for wa, wb in zip(a.windows, b.windows, strict=True)]
            shifts[n] = statistics.median(ratios) - 1
    finally:
        server.stop()
    return shifts


def collect(args: argparse.Namespace) -> None:
    root = Path(args.models)
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gate-quality-"))
    candidates = [0, *args.candidates]
    t0 = time.monotonic()
    shifts = calibrate(root, workdir, candidates, args.calibration_rounds)
    print("calibration (p50 vs base):", {n: f"{s:+.1%}" for n, s in shifts.items()}, flush=True)
    slow5 = min(args.candidates, key=lambda n: abs(shifts[n] - 0.05))
    slow10 = min((n for n in args.candidates if n != slow5), key=lambda n: abs(shifts[n] - 0.10))
    roles = {"base": "tiny_l0", "slow5": f"tiny_l{slow5}", "slow10": f"tiny_l{slow10}"}
    print(
        f"chosen: slow5 = {slow5} extra layers ({shifts[slow5]:+.1%}), "
        f"slow10 = {slow10} extra layers ({shifts[slow10]:+.1%})",
        flush=True,
    )
    paths = _export_models(root, [0, slow5, slow10])
    runs: list[dict[str, Any]] = []
    plan = ["base", "slow5", "slow10", "base"]
    for r in range(args.rounds):
        server = _start(paths, workdir)
        try:
            order = plan[r % len(plan) :] + plan[: r % len(plan)]
            for role in order:
                data = _run(server, roles[role], args.windows)
                runs.append({"round": r, "role": role, "model": roles[role], "measurement": data})
                print(
                    f"round {r} {role:6s} p50 {data['p50_ms']:.3f} ms  rps {data['rps']:.0f}  "
                    f"({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
        finally:
            server.stop()
        Path(args.out).write_text(
            json.dumps(
                {
                    "roles": roles,
                    "calibration": shifts,
                    "window_s": WINDOW_S,
                    "warmup_s": WARMUP_S,
                    "runs": runs,
                },
                indent=1,
            )
        )
    print(f"wrote {args.out} ({len(runs)} runs, {time.monotonic() - t0:.0f} s)")


def _chunks(values: list[float], k: int) -> list[list[float]]:
    return [values[i : i + k] for i in range(0, len(values) - k + 1, k)]


def _pairs(
    runs: list[tuple[int, str, list[float]]], k: int, history: int
) -> dict[str, list[tuple[list[float], list[float], list[float]]]]:
    """(baseline windows, baseline run medians, current chunk) per role, always from different servers.

    ``history`` 1: the baseline is the first K windows of one base run (the judge's window-level
    test). ``history`` H > 1: the baseline is H base runs from H other rounds (server instances),
    the newest one's windows kept, as ``--update-baselines`` run H times would record them.
    """
    base_runs = [(rnd, vals) for rnd, role, vals in runs if role == "base" and len(vals) >= k]
    first_per_round: dict[int, list[float]] = {}
    for rnd, vals in base_runs:
        first_per_round.setdefault(rnd, vals)
    rounds = sorted(first_per_round)
    out: dict[str, list[tuple[list[float], list[float], list[float]]]] = {}
    for rnd, role, vals in runs:
        for chunk in _chunks(vals, k):
            if history == 1:
                for other, base in base_runs:
                    if other != rnd:
                        out.setdefault(role, []).append((base[:k], [], chunk))
                continue
            others = [r for r in rounds if r != rnd]
            if len(others) < history:
                continue
            for start in range(len(others)):
                chosen = [others[(start + i) % len(others)] for i in range(history)]
                medians = [statistics.median(first_per_round[r]) for r in chosen]
                out.setdefault(role, []).append((first_per_round[chosen[-1]][:k], medians, chunk))
    return out


def analyze(args: argparse.Namespace) -> None:
    from pytest_tfserving.judge import judge_metric
    from pytest_tfserving.results import Measurement

    data = json.loads(Path(args.runs).read_text())
    runs = [
        (r["round"], r["role"], Measurement.from_dict(r["measurement"]).window_values(args.metric))
        for r in data["runs"]
    ]
    by_role: dict[str, list[list[float]]] = {}
    for _, role, vals in runs:
        by_role.setdefault(role, []).append(vals)
    base_all = [v for vals in by_role["base"] for v in vals]
    print(
        f"{len(runs)} real runs ({', '.join(f'{k}: {len(v)}' for k, v in by_role.items())}), "
        f"{args.metric}, window {data['window_s']} s, warm-up {data['warmup_s']} s"
    )
    effects = {}
    for role in ("slow5", "slow10"):
        role_all = [v for vals in by_role[role] for v in vals]
        effects[role] = statistics.median(role_all) / statistics.median(base_all) - 1
        print(f"  real effect {role}: {effects[role]:+.2%} (median of all windows vs base)")
    print("run medians:", {k: [round(statistics.median(v), 3) for v in vals] for k, vals in by_role.items()})
    print()
    header = f"{'hist':>4} {'K':>3} {'tol':>5} {'A/A pairs':>9} {'false alarm':>11} {'inconcl.':>8} "
    header += f"{'slow5 pairs':>11} {'detected':>8} {'slow10 pairs':>12} {'detected':>8} {'s/verdict':>9}"
    print(header)
    for history in args.history:
        for k in args.k:
            pairs = _pairs(runs, k, history)
            for tol in args.tolerance:
                rows: dict[str, list[str]] = {}
                times: list[float] = []
                for role, items in pairs.items():
                    verdicts = []
                    for base, medians, chunk in items:
                        t = time.perf_counter()
                        verdicts.append(judge_metric(args.metric, base, chunk, tolerance=tol,
                                                     alpha=args.alpha, baseline_runs=medians).verdict)
                        times.append(time.perf_counter() - t)
                    rows[role] = verdicts
                aa = rows.get("base", [])
                if not aa:
                    print(f"{history:>4} {k:>3}: not enough rounds for a history of {history}")
                    continue
                seconds = data["warmup_s"] + k * data["window_s"] + statistics.mean(times)

                def rate(role: str, rows: dict[str, list[str]] = rows) -> str:
                    got = rows.get(role, [])
                    return f"{got.count('regression') / len(got):.1%}" if got else "-"

                print(
                    f"{history:>4} {k:>3} {tol:>5.0%} {len(aa):>9} {rate('base'):>11} "
                    f"{aa.count('inconclusive') / len(aa):>8.1%} {len(rows.get('slow5', [])):>11} "
                    f"{rate('slow5'):>8} {len(rows.get('slow10', [])):>12} {rate('slow10'):>8} "
                    f"{seconds:>9.2f}"
                )
    print("\nhist = baseline runs (1: window-level test on one run; H: run-level test on H runs, each on "
          "its own server)\ns/verdict = warm-up + K windows measured + judge compute time "
          "(the baseline is a stored file)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", default="gate_runs.json")
    c.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "gate-quality-models"))
    c.add_argument("--rounds", type=int, default=6)
    c.add_argument("--windows", type=int, default=20)
    c.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    c.add_argument("--calibration-rounds", type=int, default=8)
    a = sub.add_parser("analyze")
    a.add_argument("runs")
    a.add_argument("--metric", default="p50_ms")
    a.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    a.add_argument("--tolerance", type=float, nargs="+", default=[0.10, 0.05, 0.03])
    a.add_argument("--alpha", type=float, default=0.01)
    a.add_argument("--history", type=int, nargs="+", default=[1, 3, 5],
                   help="baseline runs: 1 = one run (window-level test), H = H runs from other servers")
    args = parser.parse_args(argv)
    collect(args) if args.cmd == "collect" else analyze(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
