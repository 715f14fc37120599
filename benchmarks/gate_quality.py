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

A/B mode (``judge_paired``): the baseline's deployment (reference) is served next to the PR's
(candidate) and both are measured paired (alternating requests, or interleaved windows), so machine
drift hits both sides of each window pair alike.

3. ``collect-ab``: calibration first, on one server, the accurate way: each candidate is measured
   interleaved against tiny_l0 and its effect is the geometric mean of the paired p50 ratios; the
   candidates closest to +5 % and +10 % become slow5 and slow10 (``--slow5/--slow10`` skip this).
   Candidates are tokens: N = N extra dense layers, wW = conv width W, NwW = both. Then each session
   starts two fresh embedded servers (two processes): reference (tiny_l0) and candidate (tiny_l0,
   slow5, slow10), and for each role (base = tiny_l0 on the candidate server, slow5, slow10, in an
   order rotating per session) runs ROUNDS rounds (gRPC, closed loop), paired as perf.measure pairs
   them: ``--pairing alternate`` (default) alternates requests at concurrency 1;
   ``--pairing interleave --concurrency N`` takes turns by window (order abba), what perf.measure
   does with more than one request in flight.
   Both sides' window p50/p90/p99/mean/rps are saved per session and role; the JSON file is
   rewritten after every session, so a cut-short run is still usable.
4. ``analyze-ab``: cuts each (session, role) into disjoint chunks of K window pairs and judges each
   with ``judge_paired``; prints the A/A false-alarm and inconclusive rates, slow5/slow10 detection
   rates, seconds of measurement per verdict, the real effects (geometric mean of all pairs), and the
   spread of per-session A/A effects (a persistent offset between two server processes shows there).

    python benchmarks/gate_quality.py collect-ab --out /tmp/gate_ab.json --sessions 10 --rounds 50 \
        --base-rounds 100 --candidates 1 2 3 w18 w20 w24
    python benchmarks/gate_quality.py analyze-ab /tmp/gate_ab.json --k 5 10 20 --tolerance 0.03 0.05
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tfserving.gate.verdicts import DEFAULT_PROCESS_OFFSET

if TYPE_CHECKING:
    from pytest_tfserving.gate.verdicts import PairedMethod

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
    from pytest_tfserving.load import LoadConfig, StabilityRule, measure

    m = measure(
        LoadConfig(server.endpoints.grpc_target, model, protocol="grpc", concurrency=1),
        warmup_s=WARMUP_S,
        window_s=WINDOW_S,
        rule=StabilityRule(min_windows=windows, max_windows=windows),
    )
    return m.to_dict()


def calibrate(root: Path, workdir: Path, candidates: list[int], rounds: int) -> dict[int, float]:
    """p50 of each candidate relative to the base, from interleaved windows (drift hits both alike)."""
    from pytest_tfserving.load import LoadConfig, measure_interleaved

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
    from pytest_tfserving.gate.judge import DEFAULT_RUN_DRIFT, judge_metric
    from pytest_tfserving.load.results import Measurement

    run_drift = DEFAULT_RUN_DRIFT if args.run_drift is None else args.run_drift
    print(f"run-to-run drift floor: {run_drift:g}")

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
                    verdicts: list[str] = []
                    for base, medians, chunk in items:
                        t = time.perf_counter()
                        verdicts.append(judge_metric(args.metric, base, chunk, tolerance=tol,
                                                     alpha=args.alpha, baseline_runs=medians,
                                                     run_drift=run_drift).verdict)
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
                    f"{history:>4} {k:>3} {tol:>5.1%} {len(aa):>9} {rate('base'):>11} "
                    f"{aa.count('inconclusive') / len(aa):>8.1%} {len(rows.get('slow5', [])):>11} "
                    f"{rate('slow5'):>8} {len(rows.get('slow10', [])):>12} {rate('slow10'):>8} "
                    f"{seconds:>9.2f}"
                )
    print("\nhist = baseline runs (1: window-level test on one run; H: run-level test on H runs, each on "
          "its own server)\ns/verdict = warm-up + K windows measured + judge compute time "
          "(the baseline is a stored file)")


# --- A/B mode: the baseline's deployment served next to the PR's, measured in interleaved windows ---

AB_REWARM_S = 0.2  # measure_interleaved's default re-warm before each window


def _parse_candidate(token: str) -> tuple[str, dict[str, int]]:
    """"3" -> 3 extra dense layers; "w20" -> conv width 20; "2u360" -> 2 extra dense layers of 360 units;
    combinations such as "2w20". Returns (model name, kwargs)."""
    match = re.fullmatch(r"(\d*)(?:w(\d+))?(?:u(\d+))?", token.lower())
    if not match or not token:
        raise SystemExit(
            f"bad candidate {token!r}: use N (extra dense layers), wW (conv width), NuU (N layers of U "
            "units) or combinations, e.g. 2 w20 1w18 2u360"
        )
    layers, width, units = match.groups()
    kwargs = {"extra_dense_layers": int(layers or 0)}
    if width:
        kwargs["width"] = int(width)
    if units:
        kwargs["dense_units"] = int(units)
    name = (f"tiny_l{kwargs['extra_dense_layers']}" + (f"_w{width}" if width else "")
            + (f"_u{units}" if units else ""))
    return name, kwargs


def _export_named(root: Path, tokens: list[str]) -> dict[str, Path]:
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    paths = {}
    for token in tokens:
        name, kwargs = _parse_candidate(token)
        base = root / name
        if not (base / "1").exists():
            export_savedmodel(build_tiny_cnn(seed=0, **kwargs), base / "1")
        paths[name] = base
    return paths


def _config(server: Any, model: str, concurrency: int = 1) -> Any:
    from pytest_tfserving.load.config import LoadConfig

    return LoadConfig(
        server.endpoints.grpc_target, model, protocol="grpc", mode="closed", concurrency=concurrency
    )


def _paired_log_ratios(a: list[float], b: list[float]) -> list[float]:
    return [math.log(y / x) for x, y in zip(a, b, strict=False) if x > 0 and y > 0]


def _geo_effect(logs: list[float]) -> float:
    return math.exp(statistics.fmean(logs)) - 1 if logs else float("nan")


def calibrate_ab(
    paths: dict[str, Path], workdir: Path, names: list[str], rounds: int, window_s: float, warmup_s: float
) -> dict[str, float]:
    """Each candidate's p50 vs the base (geometric mean of paired window ratios), one server, interleaved."""
    from pytest_tfserving.load.interleaved import measure_interleaved

    server = _start(paths, workdir)
    shifts: dict[str, float] = {}
    try:
        base = _config(server, "tiny_l0")
        for name in names:
            t = time.monotonic()
            a, b = measure_interleaved(
                base, _config(server, name), rounds=rounds, warmup_s=warmup_s, window_s=window_s
            )
            logs = _paired_log_ratios(a.window_values("p50_ms"), b.window_values("p50_ms"))
            shifts[name] = _geo_effect(logs)
            print(
                f"  calibration {name:14s} p50 {b.p50_ms:.3f} ms vs base {a.p50_ms:.3f} ms: "
                f"{shifts[name]:+.1%} (sd of log ratios {statistics.stdev(logs):.3f}, "
                f"{time.monotonic() - t:.0f} s)",
                flush=True,
            )
    finally:
        server.stop()
    return shifts


def _windows(m: Any) -> list[dict[str, float]]:
    keep = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "rps")
    return [{k: float(getattr(w, k)) for k in keep} for w in m.windows]


def collect_ab(args: argparse.Namespace) -> None:
    from pytest_tfserving.load.alternating import measure_alternating
    from pytest_tfserving.load.interleaved import measure_interleaved

    root = Path(args.models)
    root.mkdir(parents=True, exist_ok=True)
    if args.concurrency < 1:
        raise SystemExit(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.concurrency > 1 and args.pairing == "alternate":
        raise SystemExit("--concurrency > 1 needs --pairing interleave (what perf.measure does there)")
    workdir = Path(tempfile.mkdtemp(prefix="gate-quality-ab-"))
    t0 = time.monotonic()
    if args.slow5 and args.slow10:
        roles = {"base": "tiny_l0", "slow5": _parse_candidate(args.slow5)[0],
                 "slow10": _parse_candidate(args.slow10)[0]}
        tokens = ["0", args.slow5, args.slow10]
        shifts: dict[str, float] = {}
        print(f"calibration skipped: slow5 = {roles['slow5']}, slow10 = {roles['slow10']}", flush=True)
    else:
        if len(args.candidates) < 2:
            raise SystemExit("--candidates needs at least two models (slow5 and slow10 must differ)")
        tokens = ["0", *args.candidates]
        paths = _export_named(root, tokens)
        names = [_parse_candidate(t)[0] for t in args.candidates]
        print(f"calibration: {args.calibration_rounds} interleaved rounds per candidate vs tiny_l0",
              flush=True)
        shifts = calibrate_ab(paths, workdir, names, args.calibration_rounds, args.window, args.warmup)
        print("calibration (p50 vs base, geometric mean of paired ratios):",
              {n: f"{s:+.1%}" for n, s in shifts.items()}, flush=True)
        slow5 = min(names, key=lambda n: abs(shifts[n] - 0.05))
        slow10 = min((n for n in names if n != slow5), key=lambda n: abs(shifts[n] - 0.10))
        roles = {"base": "tiny_l0", "slow5": slow5, "slow10": slow10}
        tokens = ["0", *(t for t in args.candidates if _parse_candidate(t)[0] in (slow5, slow10))]
        print(f"chosen: slow5 = {slow5} ({shifts[slow5]:+.1%}), slow10 = {slow10} ({shifts[slow10]:+.1%})",
              flush=True)
        if abs(shifts[slow5] - 0.05) > 0.025 or abs(shifts[slow10] - 0.10) > 0.04:
            print("  warning: no candidate is close to +5 % / +10 %; try other --candidates "
                  "(N dense layers, wW conv width, NwW)", flush=True)
    paths = _export_named(root, tokens)
    ref_paths = {"tiny_l0": paths["tiny_l0"]}
    cand_paths = {name: paths[name] for name in set(roles.values())}
    plan = ["base", "slow5", "slow10"]
    rounds = {"base": args.base_rounds or args.rounds, "slow5": args.rounds, "slow10": args.rounds}
    data: dict[str, Any] = {
        "mode": "ab", "pairing": args.pairing, "concurrency": args.concurrency, "roles": roles,
        "calibration": shifts, "window_s": args.window,
        "warmup_s": args.warmup, "rewarm_s": AB_REWARM_S, "rounds": rounds, "sessions": [],
    }
    Path(args.out).write_text(json.dumps(data, indent=1))
    for s in range(args.sessions):
        t_session = time.monotonic()
        reference = candidate = None
        session: dict[str, Any] = {"session": s, "roles": {}}
        try:
            reference = _start(ref_paths, workdir)
            candidate = _start(cand_paths, workdir)
            started = time.monotonic() - t_session
            order = plan[s % len(plan):] + plan[: s % len(plan)]
            for role in order:
                if args.pairing == "alternate":  # what perf.measure does at concurrency 1
                    ref_m, cand_m = measure_alternating(
                        _config(reference, "tiny_l0"),
                        _config(candidate, roles[role]),
                        rounds[role],
                        warmup_s=args.warmup,
                        window_s=args.window,
                    )
                else:
                    ref_m, cand_m = measure_interleaved(
                        _config(reference, "tiny_l0", args.concurrency),
                        _config(candidate, roles[role], args.concurrency),
                        rounds=rounds[role],
                        warmup_s=args.warmup,
                        window_s=args.window,
                        rewarm_s=AB_REWARM_S,
                    )
                session["roles"][role] = {"reference": _windows(ref_m), "candidate": _windows(cand_m)}
                effect = _geo_effect(_paired_log_ratios(ref_m.window_values("p50_ms"),
                                                        cand_m.window_values("p50_ms")))
                print(f"session {s} {role:6s} ref p50 {ref_m.p50_ms:.3f} ms  "
                      f"cand p50 {cand_m.p50_ms:.3f} ms  paired {effect:+.2%}  "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
        finally:
            for server in (candidate, reference):
                if server is not None:
                    server.stop()
        data["sessions"].append(session)
        Path(args.out).write_text(json.dumps(data, indent=1))
        print(f"session {s} done: {time.monotonic() - t_session:.0f} s (servers up in {started:.0f} s), "
              f"total {time.monotonic() - t0:.0f} s", flush=True)
    print(f"wrote {args.out} ({len(data['sessions'])} sessions, {time.monotonic() - t0:.0f} s)")


def _rounds(data: dict[str, Any], role: str) -> int:
    rounds = data["rounds"]
    return int(rounds[role] if isinstance(rounds, dict) else rounds)


def analyze_ab(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.runs).read_text())
    if data.get("mode") != "ab":
        raise SystemExit(f"{args.runs} is not an A/B file; write one with `collect-ab`, or use `analyze`")
    window, warmup = data["window_s"], data["warmup_s"]
    rewarm = data.get("rewarm_s", AB_REWARM_S)
    series: dict[str, list[tuple[int, list[float], list[float]]]] = {}
    for session in data["sessions"]:
        for role, sides in session["roles"].items():
            ref = [w[args.metric] for w in sides["reference"]]
            cand = [w[args.metric] for w in sides["candidate"]]
            series.setdefault(role, []).append((session["session"], ref, cand))
    per_role = {role: _rounds(data, role) for role in data["roles"]}
    print(f"{len(data['sessions'])} sessions, roles {data['roles']}, {args.metric}, "
          f"{data.get('pairing', 'interleave')} pairing at concurrency {data.get('concurrency', 1)}, "
          f"window {window} s, warm-up {warmup} s, rounds per session {per_role}")
    if data.get("calibration"):
        print("calibration (one server):", {n: f"{v:+.1%}" for n, v in data["calibration"].items()})
    for role, items in series.items():
        logs = [x for _, ref, cand in items for x in _paired_log_ratios(ref, cand)]
        per_session = [_geo_effect(_paired_log_ratios(ref, cand)) for _, ref, cand in items]
        spread = (f"per-session min {min(per_session):+.2%} median {statistics.median(per_session):+.2%} "
                  f"max {max(per_session):+.2%}")
        sd = f", sd {statistics.stdev(per_session):.2%}" if len(per_session) > 1 else ""
        print(f"  real effect {role:6s}: {_geo_effect(logs):+.2%} over {len(logs)} pairs; {spread}{sd}")
    base = series.get("base", [])
    if len(base) > 1:
        sessions_sd = statistics.stdev([statistics.fmean(_paired_log_ratios(r, c)) for _, r, c in base])
        window_sd = statistics.fmean(
            [statistics.stdev(_paired_log_ratios(r, c)) for _, r, c in base if len(r) > 2]
        )
        rounds = _rounds(data, "base")
        print(f"  A/A: sd of session means {sessions_sd:.4f} (log) vs {window_sd / math.sqrt(rounds):.4f} "
              f"expected from window noise alone (sd {window_sd:.4f}/sqrt({rounds})); a much larger first "
              "means a persistent offset between two server processes")
    print()
    print(f"{'method':>11} {'K':>5} {'tol':>5} {'A/A verdicts':>12} {'false alarm':>11} {'inconcl.':>8} "
          f"{'slow5 n':>7} {'detected':>8} {'slow10 n':>8} {'detected':>8} {'s/verdict':>9}")
    for method in args.method:
        for k in [*args.k, 0]:
            for tol in args.tolerance:
                rows: dict[str, list[str]] = {}
                used: list[int] = []
                size = k or args.seq_max
                for role, items in series.items():
                    for _, ref, cand in items:
                        for i in range(0, min(len(ref), len(cand)) - size + 1, size):
                            ref_chunk, cand_chunk = ref[i:i + size], cand[i:i + size]
                            verdict, n = _sequential(args, method, tol, ref_chunk, cand_chunk, k)
                            rows.setdefault(role, []).append(verdict)
                            used.append(n)
                aa = rows.get("base", [])

                def rate(role: str, rows: dict[str, list[str]] = rows) -> str:
                    got = rows.get(role, [])
                    return f"{got.count('regression') / len(got):.1%}" if got else "-"

                # measure_interleaved: each side warms up once (warm-up + one unmeasured window), then
                # every window of each side is preceded by a re-warm; a sequential verdict warms up again
                # (0.5 s) for every extension, as perf.measure does
                pairs = statistics.fmean(used) if used else 0.0
                extensions = 0.0 if k else max(0.0, (pairs - args.seq_start) / args.seq_step)
                if data.get("pairing") == "alternate":  # both sides in every window
                    seconds = warmup + pairs * window + extensions * 0.5
                else:
                    seconds = (2 * (warmup + window) + 2 * pairs * (window + rewarm)
                               + extensions * 2 * (0.5 + window))
                inconclusive = aa.count("inconclusive") / len(aa) if aa else 0.0
                label = str(k) if k else f"{args.seq_start}+{args.seq_step}..{args.seq_max}"
                print(f"{method:>11} {label:>5} {tol:>5.1%} {len(aa):>12} {rate('base'):>11} "
                      f"{inconclusive:>8.1%} {len(rows.get('slow5', [])):>7} "
                      f"{rate('slow5'):>8} {len(rows.get('slow10', [])):>8} {rate('slow10'):>8} "
                      f"{seconds:>9.1f}")
    print("\nverdicts: disjoint chunks of K consecutive window pairs within one (session, role); "
          "false alarm / detected = 'regression' verdicts\nK = a+b..m: the plugin's sequential rule "
          "(start with a pairs, add b while inconclusive, stop at m), on chunks of m pairs\n"
          "s/verdict: alternating pairing = warm-up + K windows (both sides in each) + 0.5 s per "
          "extension; interleaved = 2 x (warm-up + 1 window) + 2K x (window + re-warm) + re-warm-ups of "
          "extensions; as perf.measure spends them, server start-up not included")


def _sequential(
    args: argparse.Namespace, method: PairedMethod, tol: float, ref: list[float], cand: list[float], k: int
) -> tuple[str, int]:
    """The verdict on the first K pairs (K > 0), or perf.measure's rule: start, extend while
    inconclusive, stop at the maximum. Returns (verdict, pairs used)."""
    from pytest_tfserving.gate.relative import judge_paired
    from pytest_tfserving.gate.verdicts import needs_more_windows

    n = k or args.seq_start
    while True:
        verdict = judge_paired(args.metric, ref[:n], cand[:n], tolerance=tol, alpha=args.alpha,
                               min_windows=min(5, n), method=method, offset_sd=args.offset_sd)
        if k or not needs_more_windows(verdict) or n >= len(ref):
            return verdict.verdict, n
        n = min(len(ref), n + args.seq_step)


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
    a.add_argument("--run-drift", type=float, default=None,
                   help="the judge's floor on run-to-run spread (default: the plugin's; 0: none)")
    a.add_argument("--history", type=int, nargs="+", default=[1, 3, 5],
                   help="baseline runs: 1 = one run (window-level test), H = H runs from other servers")
    c = sub.add_parser("collect-ab", help="A/B: reference and candidate servers, interleaved windows")
    c.add_argument("--out", default="gate_ab.json")
    c.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "gate-quality-models"))
    c.add_argument("--sessions", type=int, default=10)
    c.add_argument("--rounds", type=int, default=50, help="interleaved rounds per role and session")
    c.add_argument("--base-rounds", type=int, default=None,
                   help="rounds for the A/A role (default: --rounds); false alarms are rare, so they "
                   "need more verdicts than detection does")
    c.add_argument("--window", type=float, default=0.5, help="window seconds (default 0.5)")
    c.add_argument("--pairing", choices=["alternate", "interleave"], default="alternate",
                   help="alternate requests (perf.measure at concurrency 1) or interleave windows")
    c.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per side (default 1.0)")
    c.add_argument("--concurrency", type=int, default=1,
                   help="requests in flight per side (closed loop); > 1 needs --pairing interleave")
    c.add_argument("--candidates", nargs="+", default=["1", "2", "3", "4", "6", "8"],
                   help="slow models: N extra dense layers, wW conv width, NwW both (default 1 2 3 4 6 8)")
    c.add_argument("--calibration-rounds", type=int, default=12)
    c.add_argument("--slow5", help="skip calibration: candidate token for the +5 %% model")
    c.add_argument("--slow10", help="skip calibration: candidate token for the +10 %% model")
    a = sub.add_parser("analyze-ab", help="false alarms / detection of judge_paired on collect-ab data")
    a.add_argument("runs")
    a.add_argument("--metric", default="p50_ms")
    a.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    a.add_argument("--tolerance", type=float, nargs="+", default=[0.03, 0.05])
    a.add_argument("--alpha", type=float, default=0.01)
    a.add_argument("--method", nargs="+", default=["signed_rank", "student_t"],
                   choices=["signed_rank", "student_t"])
    a.add_argument("--offset-sd", type=float, default=DEFAULT_PROCESS_OFFSET,
                   help="offset between two server processes the judge allows for (relative sd; "
                        "default: the plugin's for alternating requests)")
    a.add_argument("--seq-start", type=int, default=7,
                   help="sequential: first pairs (max of --perf-min-windows and 7, as perf.measure)")
    a.add_argument("--seq-step", type=int, default=3, help="sequential: pairs added while inconclusive")
    a.add_argument("--seq-max", type=int, default=20, help="sequential: most pairs (--perf-max-windows)")
    args = parser.parse_args(argv)
    commands = {"collect": collect, "analyze": analyze, "collect-ab": collect_ab, "analyze-ab": analyze_ab}
    commands[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
