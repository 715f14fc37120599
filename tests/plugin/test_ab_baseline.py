"""--ab-baseline as users meet it: --update-baselines keeps the deployment, a later session serves it
beside the PR's and judges paired windows; every reason it cannot is said, never hidden.
Real embedded servers, real tiny models."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.plugin.conftest import FAST_ARGS, use_slower_model

PERF_TEST = """
import pytest

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_latency(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*FAST_ARGS, "-rA", *args)


def test_ab_baseline_serves_the_recorded_deployment_beside_the_changed_one(
    perf_project: pytest.Pytester,
) -> None:
    perf_project.makepyfile(test_perf=PERF_TEST)
    run(perf_project, "--update-baselines").assert_outcomes(passed=1)
    data = json.loads((perf_project.path / "baselines" / "test_perf__test_latency.json").read_text())
    deployment = data["deployment"]
    assert deployment["spec"]["intra_op"] == 1 and deployment["spec"]["inter_op"] == 1
    (model,) = deployment["spec"]["models"]
    assert model["name"] == "tiny" and model["digest"].startswith("sha256:")
    store = perf_project.path / ".tfserving-cache" / "deployments"
    assert (store / model["digest"].replace(":", "-") / "1" / "saved_model.pb").is_file()

    # Unchanged deployment: nothing to serve beside it, judged against the stored runs, and said so.
    result = run(perf_project, "--ab-baseline")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--ab-baseline: judged against the stored runs, because the deployment "
                                 "is unchanged*"])

    # A genuinely slower model: the recorded deployment runs beside it and the paired judge fails it.
    # Width 512 makes it about 4x slower: rps must fall by more than the 50 % tolerance too (width 256
    # measured 1.97x in mean latency once, rps -49.3 %, a pass).
    use_slower_model(perf_project, 32)
    report = perf_project.path / "report.json"
    result = run(perf_project, "--ab-baseline", f"--perf-report-json={report}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*p50_ms: regression*baseline's deployment served beside it, median of * paired windows*"
        "CI of the paired ratio*",
    ])
    verdicts = json.loads(report.read_text())["tests"][0]["verdicts"]
    assert next(v for v in verdicts if v["metric"] == "p50_ms")["paired"] is True
    # The note names which side is which: the slower model's side is this run's.
    sides = re.search(r"p50 ([\d.]+) ms on the baseline's side, ([\d.]+) ms on this run's",
                      result.stdout.str())
    assert sides is not None and float(sides[2]) > float(sides[1])
    # Alternating requests complete as many on each side; rps is judged from latency, so it regresses too.
    assert next(v for v in verdicts if v["metric"] == "rps")["verdict"] == "regression"

    # Without the model in the store the gate says so and falls back to the stored numbers.
    # (A one-run baseline makes no claim against stored numbers: inconclusive, failed when strict.)
    shutil.rmtree(store)
    result = run(perf_project, "--ab-baseline", "--perf-inconclusive=fail")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*judged against the stored runs, because model 'tiny' (sha256:*) of "
                                 "the baseline's deployment is not in the deployment store*"])
    result.stdout.fnmatch_lines(["*p50_ms: inconclusive*median of * windows*"])
