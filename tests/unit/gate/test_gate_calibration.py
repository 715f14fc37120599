"""benchmarks/gate_calibration.py: the harness behind docs/GATE.md's simulated false-alarm and
detection rates. Its fit must recover what it generated, its intervals must be the exact ones, and
its simulation must run the plugin's judges on what the model draws (a change drawn must be found,
an offset beyond what the judge allows for must raise false alarms)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.gate.verdicts import DEFAULT_PROCESS_OFFSET
from tests.module_loading import load_benchmark


@pytest.fixture(scope="module")
def cal() -> ModuleType:
    return load_benchmark("gate_calibration")


def _ab_file(cal: ModuleType, path: Path, model: Any, sessions: int, pairs: int, seed: int) -> Path:
    """A collect-ab file (alternating pairing) drawn from ``model``: each session a reference process
    at its own level (``process_sd``) and a candidate differing by a per-session offset."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(sessions):
        level = float(rng.normal(0, model.process_sd))
        ref_b = cal.Stream(model.single, rng, level).take(pairs)
        d = cal.Stream(model.alternating, rng, float(rng.normal(0, model.alternating_offset))).take(pairs)
        ref, cand = [], []
        for (b0, b1), (d0, d1) in zip(ref_b.tolist(), d.tolist(), strict=True):
            p50, mean = 2.0 * math.exp(b0), 2.2 * math.exp(b1)
            ref.append({"p50_ms": p50, "mean_ms": mean, "rps": 1000 / mean})
            cand.append({"p50_ms": p50 * math.exp(d0), "mean_ms": mean * math.exp(d1),
                         "rps": 1000 / (mean * math.exp(d1))})
        out.append({"session": s, "roles": {"base": {"reference": ref, "candidate": cand}}})
    data = {"mode": "ab", "pairing": "alternate", "concurrency": 1, "roles": {"base": "tiny_l0"},
            "window_s": 0.5, "warmup_s": 1.0, "rounds": pairs, "sessions": out}
    path.write_text(json.dumps(data))
    return path


def test_fit_recovers_the_parameters_it_generated_data_from(cal: ModuleType, tmp_path: Path) -> None:
    truth = replace(
        cal.default_model(),
        single=cal.Series(sd=0.08, rho=0.3, outlier_rate=0.04, outlier_log=1.0, outlier_up=1.0,
                          corr=0.6, ratio2=1.4),
        process_sd=0.15,
        alternating=cal.Series(sd=0.04, rho=0.4, outlier_rate=0.03, outlier_log=0.5, outlier_up=0.5,
                               corr=0.7, ratio2=1.3),
        alternating_offset=0.012,
    )
    path = _ab_file(cal, tmp_path / "ab.json", truth, sessions=240, pairs=30, seed=3)
    fitted = cal.fit_files([path]).model
    for name in ("single", "alternating"):
        got, want = getattr(fitted, name), getattr(truth, name)
        assert got.sd == pytest.approx(want.sd, rel=0.06), name
        assert got.rho == pytest.approx(want.rho, abs=0.06), name
        assert got.outlier_rate == pytest.approx(want.outlier_rate, abs=0.008), name
        assert got.outlier_log == pytest.approx(want.outlier_log, rel=0.1), name
        assert got.outlier_up == pytest.approx(want.outlier_up, abs=0.12), name
        assert got.corr == pytest.approx(want.corr, abs=0.05), name
        assert got.ratio2 == pytest.approx(want.ratio2, rel=0.06), name
        assert got.trend_sd < 0.003, name  # the noise alone gives slopes sd 0.002
    # The offset is a small part of the session means' spread (window noise alone gives them sd
    # 0.04 * 1.5 / sqrt(30) = 0.011): recovering it needs the noise part taken out.
    assert fitted.alternating_offset == pytest.approx(0.012, abs=0.004)
    assert fitted.process_sd == pytest.approx(0.15, rel=0.15)
    assert fitted.window_s == 0.5
    assert fitted.interleaved == cal.default_model().interleaved  # no interleaved data: defaults kept


def test_fit_takes_the_trend_out_of_the_offset(cal: ModuleType, tmp_path: Path) -> None:
    """A trend of 0.001 per window moves a 40-pair session's mean by 0.02 (sd), as much as the
    offset: the fit finds the trend and leaves its part out of the offset."""
    drifting = cal.Series(sd=0.04, rho=0.0, trend_sd=0.001, corr=0.7)
    truth = replace(cal.default_model(), alternating=drifting, alternating_offset=0.02)
    fitted = cal.fit_files([_ab_file(cal, tmp_path / "ab.json", truth, sessions=400, pairs=40, seed=5)]).model
    assert fitted.alternating.trend_sd == pytest.approx(0.001, rel=0.15)
    assert fitted.alternating_offset == pytest.approx(0.02, abs=0.005)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 24, 0.0, 1 - 0.025 ** (1 / 24)),  # 0.1425: "0 of 24" bounds the rate only below 14.2 %
        (24, 24, 0.025 ** (1 / 24), 1.0),
        (5, 20, 0.0866, 0.4910),  # the published exact interval
        (1, 10, 0.0025, 0.4450),
    ],
)
def test_clopper_pearson_is_the_exact_interval(
    cal: ModuleType, k: int, n: int, low: float, high: float
) -> None:
    got = cal.clopper_pearson(k, n)
    assert got[0] == pytest.approx(low, abs=5e-5)
    assert got[1] == pytest.approx(high, abs=5e-5)


def test_fast_tails_leave_every_verdict_unchanged(cal: ModuleType) -> None:
    model, settings = cal.default_model(), cal.Settings()

    def run(fast: bool) -> list[tuple[int, int, int, float]]:
        rows = []
        with cal.fast_tails(fast):
            for mode in (cal.Mode("stored", history=3), cal.Mode("ab", concurrency=1)):
                t = cal.simulate_prs(model, mode, tolerance=0.05, effect=0.08, prs=2, tests=3, alpha=0.01,
                                     settings=settings, seed=1)
                rows.append((t.regressions, t.inconclusive, t.verdicts, t.seconds))
        return rows

    assert run(True) == run(False)


def _quiet(cal: ModuleType, **changes: Any) -> Any:
    """Almost no noise anywhere: what the judges see is the change drawn and nothing else."""
    calm = cal.Series(sd=0.002, rho=0.0, corr=0.9)
    model = replace(cal.default_model(), single=calm, alternating=calm, interleaved=calm, process_sd=0.0,
                    sitting_sd=0.0, alternating_offset=0.0, interleaved_offset=0.0)
    return replace(model, **changes)


@pytest.mark.parametrize("mode", [("ab", 1), ("ab", 4)])
def test_the_judges_find_the_change_drawn_and_nothing_else(cal: ModuleType, mode: tuple[str, int]) -> None:
    model, settings, path = _quiet(cal), cal.Settings(), cal.Mode(mode[0], concurrency=mode[1])
    # The judge allows for a process offset (1.5 % alternating, 3.5 % interleaved) at the alpha of one
    # look of one metric of one of 10 tests: +30 % is beyond both at tolerance 5 %.
    found = cal.simulate_tests(model, path, tolerance=0.05, effect=0.30, trials=20, tests=10, alpha=0.01,
                               settings=settings, seed=0)
    assert found.failed_tests == 20
    aa = cal.simulate_prs(model, path, tolerance=0.05, effect=0.0, prs=3, tests=5, alpha=0.01,
                          settings=settings, seed=0)
    assert aa.regressions == 0 and aa.inconclusive == 0
    # A first look of 7 pairs settles both: 7 pairs plus the server alone (6 windows) and warm-ups.
    seconds = (2.0 + 6 * 0.5) + ((2.0 + 7 * 0.5) if mode[1] == 1 else 2 * (2.0 + 0.5) + 14 * (0.5 + 0.2))
    assert found.seconds / found.tests == pytest.approx(seconds)


def test_the_prs_alpha_is_split_over_its_tests_metrics_and_looks(cal: ModuleType) -> None:
    """At tolerance 0 a noiseless change is a regression when it lies beyond z(look alpha) process
    offsets (1.5 %): a change halfway between that bound for a PR of one test and for a PR of ten
    is found in the first and not in the second."""
    model, settings, path = _quiet(cal), cal.Settings(), cal.Mode("ab", concurrency=1)
    first = max(settings.min_windows, 7)
    looks = cal.Limits.within(settings.rule(), first=cal.StabilityRule(first, first)).looks()

    def bound(tests: int) -> float:
        call = AlphaSpender(SessionAlpha(0.01, tests).per_test()).next_call()
        return float(norm.isf(per_verdict_look(call, 2, looks))) * math.log1p(DEFAULT_PROCESS_OFFSET)

    effect = math.expm1((bound(1) + bound(10)) / 2)

    def detected(tests: int) -> int:
        return cal.simulate_tests(model, path, tolerance=0.0, effect=effect, trials=5, tests=tests,
                                  alpha=0.01, settings=settings, seed=0).failed_tests

    assert (detected(1), detected(10)) == (5, 0)


def test_stored_baselines_are_judged_against_the_run_drift_floor(cal: ModuleType) -> None:
    """Without noise a stored baseline still allows --perf-run-drift (6 %) between sessions: +20 %
    stays within it at 10 tests in the PR, +60 % does not."""
    model, settings, path = _quiet(cal), cal.Settings(), cal.Mode("stored", history=5)
    small = cal.simulate_tests(model, path, tolerance=0.10, effect=0.20, trials=10, tests=10, alpha=0.01,
                               settings=settings, seed=0)
    large = cal.simulate_tests(model, path, tolerance=0.10, effect=0.60, trials=10, tests=10, alpha=0.01,
                               settings=settings, seed=0)
    assert (small.failed_tests, large.failed_tests) == (0, 10)


def test_recorded_runs_let_the_judge_see_the_drift_between_processes(cal: ModuleType) -> None:
    """Server processes 30 % apart (sd): one recorded run shows the judge nothing of it, so beyond the
    6 % floor it makes no claim (inconclusive, the fix named) rather than failing unchanged PRs; five
    runs show the spread and no unchanged PR fails either."""
    model, settings = _quiet(cal, process_sd=0.3), cal.Settings()

    def failed(history: int) -> int:
        return cal.simulate_prs(model, cal.Mode("stored", history=history), tolerance=0.10, effect=0.0,
                                prs=10, tests=10, alpha=0.01, settings=settings, seed=0).failed_prs

    one, five = failed(1), failed(5)
    assert one == 0 and five == 0, (one, five)


def test_an_offset_beyond_the_judges_allowance_raises_false_alarms(cal: ModuleType) -> None:
    """The judge allows for a 1.5 % offset between two processes; at 10 % it cannot hold alpha."""
    model = _quiet(cal, alternating_offset=0.10)
    aa = cal.simulate_prs(model, cal.Mode("ab", concurrency=1), tolerance=0.03, effect=0.0, prs=4, tests=10,
                          alpha=0.01, settings=cal.Settings(), seed=0)
    assert aa.failed_prs >= 3


def test_compare_coverage_counts_the_bounds_that_miss_the_true_ratio(cal: ModuleType) -> None:
    """perf.compare allows a 3.5 % offset between the two processes: with pairs that agree to 0.2 %
    its bounds always hold the true ratio; with processes 20 % apart (sd) they miss on both sides."""
    assert cal.compare_coverage(_quiet(cal), pairs=10, trials=40, alpha=0.01, seed=0) == (0, 0)
    upper, lower = cal.compare_coverage(_quiet(cal, interleaved_offset=0.2), pairs=10, trials=40,
                                        alpha=0.01, seed=0)
    assert upper >= 6 and lower >= 6, (upper, lower)


def test_simulation_is_seeded(cal: ModuleType) -> None:
    model, settings, path = cal.default_model(), cal.Settings(), cal.Mode("stored", history=1)

    def tally(seed: int) -> Any:
        return cal.simulate_prs(model, path, tolerance=0.10, effect=0.0, prs=2, tests=3, alpha=0.01,
                                settings=settings, seed=seed)

    assert tally(4) == tally(4)
    assert tally(4) != tally(5)


def test_simulate_prints_every_row(cal: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    cal.main(["simulate", "--trials", "2", "--tests", "2", "--compare-trials", "3",
              "--goal-tolerances", "0.03"])
    out = capsys.readouterr().out
    rows = [line.split("|")[1:3] for line in out.splitlines() if line.startswith("| ")]
    labels = [(a.strip(), b.strip()) for a, b in rows]
    for path in ("stored, 1 run", "stored, 3 runs", "stored, 5 runs", "--ab-baseline c1 (alternating)",
                 "--ab-baseline c4 (interleaved)"):
        for tol in ("10%", "5%"):
            assert labels.count((path, tol)) == 2, (path, tol)  # A/A and detection
    for pairs in ("5", "10", "20"):
        assert any(a == pairs for a, _ in labels), pairs
    assert [a for a, _ in labels if a in ("3%", "5%", "10%")] == ["3%", "5%", "10%"]  # goal rows
    assert out.count("per-PR false alarms <= 1 %") == 10
    assert "--ab-baseline c1 detection goals" in out
