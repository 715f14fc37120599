"""What stored baselines can detect: each baseline's latest run judged against its own run history,
with the drift pooled over the directory's baselines (as a session pools it) and without (each
history alone), at the per-look alpha of one test in a PR of ``--tests`` perf tests.

Prints, per baseline and gated metric, the ``detectable`` figure of both judgements, then the pools.
No server runs: the baselines' own numbers are the data (docs/GATE.md, "Against stored baselines").

    python benchmarks/stored_detectable.py baselines/ --tests 10 --tolerance 0.10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.gate.baselines import Baseline, load_baseline
from pytest_tfserving.gate.judge import judge
from pytest_tfserving.gate.run_drift import RunDriftPools

GATED = ("p50_ms", "rps", "mean_ms")


def detectable_line(baseline: Baseline, pooled: bool, pools: RunDriftPools, tolerance: float,
                    alpha: float) -> str:
    gate = [m for m in GATED if baseline.run_values(m)]
    verdicts = judge(baseline, baseline.measurement, baseline.fingerprint, gate=gate, tolerance=tolerance,
                     alpha=alpha, pooled=pools.for_baseline(baseline) if pooled else None)
    cells = [f"{v.metric} {v.detectable:+.0%}" if v.detectable is not None else f"{v.metric} -"
             for v in verdicts]
    return f"| {baseline.nodeid} | {len(baseline.history)} | {'pooled' if pooled else 'alone'} | " \
           + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--tests", type=int, default=10, help="perf tests in the PR (default 10)")
    parser.add_argument("--alpha", type=float, default=0.01, help="--perf-alpha (default 0.01)")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--looks", type=int, default=2, help="looks per verdict (default 2)")
    args = parser.parse_args(argv)
    baselines = [b for p in sorted(args.directory.glob("*.json")) if (b := load_baseline(p)) is not None]
    if not baselines:
        parser.error(f"no baselines in {args.directory}")
    pools = RunDriftPools.from_baselines(baselines)
    call = AlphaSpender(SessionAlpha(args.alpha, args.tests).per_test()).next_call()
    alpha = per_verdict_look(call, len(GATED) - 1, args.looks)
    print(f"per-look alpha {alpha:.3g} ({args.tests} tests, 2 metrics, {args.looks} looks); "
          f"tolerance {args.tolerance:.0%}; detectable at 95 % power\n")
    print("| baseline | runs | drift | detectable |\n|---|---|---|---|")
    for baseline in baselines:
        for pooled in (True, False):
            print(detectable_line(baseline, pooled, pools, args.tolerance, alpha))
    print("\n| hardware key | metric | pooled sd | df | histories | set aside |\n|---|---|---|---|---|---|")
    for (key, metric), pool in sorted(pools.pools.items()):
        if metric in GATED:
            print(f"| {key[:48]} | {metric} | {pool.sd:.4f} | {pool.df} | {pool.histories} "
                  f"| {pool.set_aside} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
