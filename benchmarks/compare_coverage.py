"""perf.compare's coverage: does a bound stated at ``1 - alpha`` miss the true ratio ``alpha`` of the time?

The real ``gate.relative.judge_relative`` (and, for whole calls, the real ``perf.settle`` loop with
``Limits.in_rounds`` and the alpha split of ``gate.alpha_budget``, as ``perf.compare`` runs them) on
synthetic window pairs drawn from the two noise models of ``benchmarks/gate_calibration.py``: the
quiet-machine defaults (``default_model()``) and ``benchmarks/gate_noise_pessimistic.json``.

What is drawn, per trial, on the log scale (``d_i = log(a_i / b_i)``, the pair's log ratio):

- **the true ratio** is the ratio of the two *deployments* (what the claim "int8 <= 0.6x fp32" is
  about), not of the two server processes this run happened to start: ``d_i = log(true) + offset +
  e_i + trend_i``, with ``offset ~ N(0, interleaved_offset)`` drawn once per trial (two processes of
  the same deployments differ persistently; no number of pairs averages it out), so the offset is
  part of the error a bound must cover;
- ``e_i``: the model's interleaved pair series, AR(1) (sd ``sd``, lag-1 autocorrelation ``rho``),
  plus outlier pairs (rate ``outlier_rate``, size ``outlier_log``). A burst is a neighbour hitting
  whichever server is running, so it moves a pair's ratio up or down with equal chance (the
  pessimistic file's ``outlier_up`` 1.0 comes from its per-parameter maximum and would make the
  bursts part of deployment ``a``);
- ``trend_i``: a within-session trend of the machine (slope ``single.trend_sd`` per window, drawn
  per trial) that hits both servers; in the A B B A order it adds ``-slope`` to even rounds' ratios
  and ``+slope`` to odd ones (``b`` ran one window later, then earlier), as ``measure_interleaved``
  does; the pair series' own trend is 0 in both models.

``b``'s windows are a constant 2 ms (the judge sees only ratios). Printed, with 95 % Clopper-Pearson
intervals: (1) at fixed 5, 7, 10, 15, 20 pairs and a stated one-sided level, how often each bound
misses the true ratio and the median half-width of the interval; (2) whole ``perf.compare`` calls
(first look at ``rounds`` pairs, one extension to ``max_rounds``, each look at its share of
``--perf-alpha``): how often the final bounds miss, how often a claim that truly holds with
margin 0 (true ratio = ``max_ratio``) fails, and the pass/fail rates at a few true ratios.

    python benchmarks/compare_coverage.py                       # 20000 trials per cell
    python benchmarks/compare_coverage.py --trials 4000 --models quiet
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.gate.outcome import verdict_fails
from pytest_tfserving.gate.relative import judge_relative, stated_over_looks
from pytest_tfserving.gate.verdicts import RelativeVerdict
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.settle import Limits, Sides, measure_until_settled

HERE = Path(__file__).resolve().parent
PESSIMISTIC = HERE / "gate_noise_pessimistic.json"
B_P50_MS = 2.0
WINDOW_S = 0.5
PAIRS = (5, 7, 10, 15, 20)
CALLS = ((5, 15), (7, 20), (10, 20))  # (rounds, max_rounds) of a perf.compare call


def _calibration() -> ModuleType:
    """``gate_calibration.py`` (owned elsewhere; read only: its noise models and fast tail functions)."""
    import importlib.util

    name = "gate_calibration_for_compare_coverage"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "gate_calibration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class PairNoise:
    """The interleaved pairs' log-ratio noise of one model (see the module docstring)."""

    sd: float
    rho: float
    outlier_rate: float
    outlier_log: float
    offset_sd: float
    trend_sd: float


def pair_noise(model: str) -> PairNoise:
    """``quiet`` (gate_calibration's defaults) or ``pessimistic`` (gate_noise_pessimistic.json)."""
    cal = _calibration()
    if model == "quiet":
        m = cal.default_model()
    elif model == "pessimistic":
        m = cal.load_model(str(PESSIMISTIC))
    else:
        raise ValueError(f"model={model!r}: use 'quiet' or 'pessimistic'")
    s = m.interleaved
    return PairNoise(s.sd, s.rho, s.outlier_rate, s.outlier_log, m.interleaved_offset, m.single.trend_sd)


def draw_log_ratios(noise: PairNoise, rng: np.random.Generator, trials: int, n: int, true_log: float = 0.0
                    ) -> np.ndarray:
    """``trials`` runs of ``n`` pair log ratios ``log(a_i / b_i)`` around ``true_log``, shape (trials, n)."""
    z = rng.standard_normal((trials, n))
    e = np.empty_like(z)
    e[:, 0] = z[:, 0]
    keep = math.sqrt(1 - noise.rho**2)
    for i in range(1, n):
        e[:, i] = noise.rho * e[:, i - 1] + keep * z[:, i]
    e *= noise.sd
    hit = rng.random((trials, n)) < noise.outlier_rate
    sign = np.where(rng.random((trials, n)) < 0.5, 1.0, -1.0)
    e += hit * sign * noise.outlier_log
    offset = rng.normal(0.0, noise.offset_sd, (trials, 1)) if noise.offset_sd > 0 else 0.0
    slope = rng.normal(0.0, noise.trend_sd, (trials, 1)) if noise.trend_sd > 0 else 0.0
    abba = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)[None, :]
    return true_log + offset + e + slope * abba


def _window(i: int, p50: float) -> WindowSummary:
    return WindowSummary(start_s=i * WINDOW_S, duration_s=WINDOW_S, count=100, errors=0, p50_ms=p50,
                         p90_ms=p50, p95_ms=p50, p99_ms=p50, max_ms=p50, mean_ms=p50, rps=100 / WINDOW_S)


def measurement(p50s: Sequence[float]) -> Measurement:
    """A run whose windows have these p50s (the other fields: plausible, read by no judge here)."""
    windows = tuple(_window(i, p) for i, p in enumerate(p50s))
    p50 = float(np.median(p50s))
    return Measurement(protocol="grpc", mode="closed", concurrency=1, target_rps=None,
                       duration_s=WINDOW_S * len(windows), count=100 * len(windows), errors=0,
                       errors_by_status={}, p50_ms=p50, p90_ms=p50, p95_ms=p50, p99_ms=p50, max_ms=p50,
                       mean_ms=p50, rps=100 / WINDOW_S, windows=windows, stable=True)


def pair_of(logs: np.ndarray) -> tuple[Measurement, Measurement]:
    """``a`` and ``b`` whose window p50 ratios are ``exp(logs)``."""
    return measurement((B_P50_MS * np.exp(logs)).tolist()), measurement([B_P50_MS] * len(logs))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate (``gate_calibration.clopper_pearson``)."""
    interval: tuple[float, float] = _calibration().clopper_pearson(k, n, confidence)
    return interval


def rate_text(k: int, n: int, digits: int = 2) -> str:
    low, high = clopper_pearson(k, n)
    return f"{k / n:.{digits}%} [{low:.{digits}%}, {high:.{digits}%}]"


# --- fixed number of pairs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    trials: int
    miss_upper: int  # the upper bound lay below the true ratio
    miss_lower: int  # the lower bound lay above it
    half_width: float  # median of (upper / ratio - 1): how far the one-sided bound lies from the estimate


def fixed_coverage(noise: PairNoise, n: int, trials: int, alpha: float, seed: int,
                   judge: Callable[..., RelativeVerdict] = judge_relative) -> Coverage:
    """How often ``judge``'s one-sided ``1 - alpha`` bounds over ``n`` pairs miss a true ratio of 1."""
    rng = np.random.default_rng([seed, n, trials])
    logs = draw_log_ratios(noise, rng, trials, n)
    upper = lower = 0
    widths = np.empty(trials)
    for t in range(trials):
        a, b = pair_of(logs[t])
        v = judge(a, b, "p50_ms", max_ratio=1.0, alpha=alpha, min_windows=min(n, 5))
        assert v.ci_low is not None and v.ci_high is not None and v.ratio is not None
        upper += v.ci_high < 1.0
        lower += v.ci_low > 1.0
        widths[t] = v.ci_high / v.ratio - 1
    return Coverage(trials, upper, lower, float(np.median(widths)))


# --- whole perf.compare calls -----------------------------------------------------------------------


@dataclass
class CallTally:
    trials: int = 0
    passed: int = 0
    failed: int = 0  # the test fails (gate.outcome.verdict_fails, default policy)
    inconclusive: int = 0  # shown as inconclusive, not failed
    miss_upper: int = 0
    miss_lower: int = 0
    pairs: int = 0
    stated_miss: float = 0.0  # 1 - verdict.confidence of the final look


def compare_call(logs: np.ndarray, rounds: int, max_rounds: int, max_ratio: float, session_alpha: float,
                 judge: Callable[..., RelativeVerdict] = judge_relative) -> RelativeVerdict:
    """One ``perf.compare(a, b, max_ratio=...)`` in a test of its own, on the pairs ``logs`` (at least
    ``max_rounds``): the real settle loop, the real alpha split and statement of confidence
    (``stated_over_looks``), synthetic windows."""
    limits = Limits.in_rounds(rounds, max_rounds)
    look_alpha = per_verdict_look(AlphaSpender(SessionAlpha(session_alpha).per_test()).next_call(), 1,
                                  limits.looks())
    taken = 0

    def measure_more(rule: StabilityRule, warmup_s: float) -> Sides:
        nonlocal taken
        chunk = logs[taken:taken + rule.max_windows]
        taken += rule.max_windows
        return pair_of(chunk)

    def verdict_of(sides: Sides) -> list[RelativeVerdict]:
        a, b = sides
        return [judge(a, b, "p50_ms", max_ratio=max_ratio, alpha=look_alpha, min_windows=min(rounds, 5))]

    _, (verdict,) = measure_until_settled(measure_more, verdict_of, limits, 0.0)
    return stated_over_looks(verdict, look_alpha, limits.looks())


def call_tally(noise: PairNoise, rounds: int, max_rounds: int, true_ratio: float, trials: int,
               session_alpha: float, seed: int, max_ratio: float = 0.6) -> CallTally:
    rng = np.random.default_rng([seed, rounds, max_rounds, round(true_ratio * 1e6), trials])
    logs = draw_log_ratios(noise, rng, trials, max_rounds, math.log(true_ratio))
    tally = CallTally()
    for t in range(trials):
        v = compare_call(logs[t], rounds, max_rounds, max_ratio, session_alpha)
        assert v.ci_low is not None and v.ci_high is not None
        tally.trials += 1
        tally.passed += v.verdict == "pass"
        fails = verdict_fails(v)  # what the test gets under the default policy (gate.outcome)
        tally.failed += fails
        tally.inconclusive += v.verdict == "inconclusive" and not fails
        tally.miss_upper += v.ci_high < true_ratio
        tally.miss_lower += v.ci_low > true_ratio
        tally.pairs += v.n_pairs
        tally.stated_miss = 1 - v.confidence
    return tally


# --- the report -------------------------------------------------------------------------------------


def fixed_table(models: Sequence[str], trials: int, alpha: float, seed: int) -> None:
    print(f"\nFixed pairs: one-sided {1 - alpha:.0%} bounds of judge_relative, {trials} trials per cell, "
          f"true ratio 1; stated miss rate {alpha:.1%} per side")
    print("| model | pairs | upper bound misses | lower bound misses | median half-width |")
    print("|---|---|---|---|---|")
    for name in models:
        noise = pair_noise(name)
        for n in PAIRS:
            c = fixed_coverage(noise, n, trials, alpha, seed)
            print(f"| {name} | {n} | {rate_text(c.miss_upper, trials)} | {rate_text(c.miss_lower, trials)} "
                  f"| {c.half_width:.1%} |", flush=True)


def calls_table(models: Sequence[str], trials: int, session_alpha: float, seed: int,
                ratios: Sequence[float]) -> None:
    print(f"\nWhole perf.compare calls, max_ratio 0.6, --perf-alpha {session_alpha:g} (one test, one call: "
          f"{AlphaSpender(SessionAlpha(session_alpha).per_test()).next_call():.4f} per call, split over "
          f"its looks), {trials} trials per cell. Margin 0: true ratio = 0.6 (holds, just); misses: the "
          f"final bounds against the true ratio; stated: 1 - the verdict's confidence")
    print("| model | rounds -> max | stated miss/side | upper misses | lower misses | fails at margin 0 "
          "| inconclusive at margin 0 | mean pairs |")
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        noise = pair_noise(name)
        for rounds, max_rounds in CALLS:
            t = call_tally(noise, rounds, max_rounds, 0.6, trials, session_alpha, seed)
            print(f"| {name} | {rounds} -> {max_rounds} | {t.stated_miss:.2%} | "
                  f"{rate_text(t.miss_upper, t.trials)} | {rate_text(t.miss_lower, t.trials)} | "
                  f"{rate_text(t.failed, t.trials)} | {t.inconclusive / t.trials:.1%} | "
                  f"{t.pairs / t.trials:.1f} |", flush=True)
    power_trials = max(200, trials // 10)
    print(f"\nPower: outcome of perf.compare(max_ratio=0.6) at true ratios (x max_ratio), {power_trials} "
          "trials; pass / the test fails / inconclusive (not failed)")
    print("| model | rounds -> max | " + " | ".join(f"{r:g}x" for r in ratios) + " |")
    print("|---|---|" + "---|" * len(ratios))
    for name in models:
        noise = pair_noise(name)
        for rounds, max_rounds in CALLS:
            cells = []
            for r in ratios:
                t = call_tally(noise, rounds, max_rounds, 0.6 * r, power_trials, session_alpha, seed)
                cells.append(f"{t.passed / t.trials:.0%} / {t.failed / t.trials:.0%} / "
                             f"{t.inconclusive / t.trials:.0%}")
            print(f"| {name} | {rounds} -> {max_rounds} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000, help="trials per coverage cell (default 20000)")
    parser.add_argument("--models", nargs="+", default=["quiet", "pessimistic"],
                        choices=["quiet", "pessimistic"])
    parser.add_argument("--alpha", type=float, default=0.01, help="stated miss rate per side at fixed pairs")
    parser.add_argument("--perf-alpha", type=float, default=0.01, help="session alpha for whole calls")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.7, 0.85, 1.0, 1.2, 1.5],
                        help="true ratios for the power table, as multiples of max_ratio")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--skip-calls", action="store_true", help="only the fixed-pairs table")
    parser.add_argument("--skip-fixed", action="store_true", help="only the whole-call tables")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with _calibration().fast_tails():
        if not args.skip_fixed:
            fixed_table(args.models, args.trials, args.alpha, args.seed)
        if not args.skip_calls:
            calls_table(args.models, args.trials, args.perf_alpha, args.seed, args.ratios)
    print(f"\n{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
