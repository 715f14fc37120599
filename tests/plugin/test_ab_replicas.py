"""--ab-replicas as users meet it: bad values stop the run with the fix named; with --ab-baseline and
--ab-replicas 2 the session starts two processes of the baseline's deployment and a second one of the
test's, judges the pairs rotating over them, says so, and stops every process at the end.
Real embedded servers, real tiny models."""

from __future__ import annotations

import json

import psutil
import pytest

from tests.plugin.conftest import FAST_ARGS, use_slower_model

# After perf.measure the session's servers still run: the test lists the embedded ones it can see
# that were not there when the module was collected (an in-process pytester shares its process with
# the outer session, whose own servers may still run).
PERF_TEST = """
import json
from pathlib import Path

import psutil
import pytest

BEFORE = {p.pid for p in psutil.Process().children(recursive=True)}

def embedded_server(process):
    try:  # another session's descendant may be a zombie (this process is a subreaper) or gone
        return "pytest_tfserving.embedded" in " ".join(process.cmdline())
    except psutil.Error:
        return False

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_latency(tfserving_server, perf, request):
    perf.measure(tfserving_server, concurrency=1)
    servers = [p.pid for p in psutil.Process().children(recursive=True)
               if p.pid not in BEFORE and embedded_server(p)]
    (Path(str(request.config.rootpath)) / "servers.json").write_text(json.dumps(servers))
"""


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (("--ab-replicas=0",), "", "ERROR: --ab-replicas: '0' must be a whole number from 1 (one process per "
                                   "side) to 8, e.g. 3"),
        (("--ab-replicas=two",), "", "ERROR: --ab-replicas: 'two' must be a whole number from 1*"),
        (("--ab-replicas=9",), "", "ERROR: --ab-replicas: '9' must be a whole number from 1*to 8*"),
        ((), "ab_replicas = 1.5", "ERROR: ini ab_replicas: '1.5' must be a whole number from 1*"),
    ],
)
def test_bad_replica_counts_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_two_processes_per_side_are_started_judged_and_stopped(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_perf=PERF_TEST)
    perf_project.runpytest(*FAST_ARGS, "--update-baselines").assert_outcomes(passed=1)
    assert len(json.loads((perf_project.path / "servers.json").read_text())) == 1

    use_slower_model(perf_project, 32)  # about 4x slower: beyond the 50 % tolerance
    report = perf_project.path / "report.json"
    result = perf_project.runpytest(*FAST_ARGS, "-rA", "--ab-baseline", "--ab-replicas=2",
                                    f"--perf-report-json={report}")
    result.assert_outcomes(failed=1)
    # The test's server, one more of its deployment, two of the baseline's: four at once.
    servers = json.loads((perf_project.path / "servers.json").read_text())
    assert len(servers) == 4, servers
    assert not [pid for pid in servers if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE], "servers left running"
    (test,) = json.loads(report.read_text())["tests"]
    verdicts = {v["metric"]: v for v in test["verdicts"]}
    assert verdicts["p50_ms"]["verdict"] == "regression" and verdicts["p50_ms"]["paired"] is True
    result.stdout.fnmatch_lines([
        "*p50_ms: regression*offset between server processes, averaged over 2 processes per side*",
    ])
    result.stdout.fnmatch_lines(["*2 server processes per side, the pairs rotating over them*"])


def test_with_more_than_one_request_in_flight_one_process_per_side_serves(
    perf_project: pytest.Pytester,
) -> None:
    """Replicas average out the offset that limits alternating requests; at concurrency > 1 the
    window pairs' noise is the limit, so the session spares starting them (docs/GATE.md)."""
    perf_project.makepyfile(test_perf=PERF_TEST.replace("concurrency=1", "concurrency=2"))
    perf_project.runpytest(*FAST_ARGS, "--update-baselines").assert_outcomes(passed=1)
    use_slower_model(perf_project, 32)  # another deployment, so the baseline's is served beside it
    result = perf_project.runpytest(*FAST_ARGS, "-rA", "--ab-baseline", "--ab-replicas=3")
    result.assert_outcomes(failed=1)
    servers = json.loads((perf_project.path / "servers.json").read_text())
    assert len(servers) == 2, servers  # the test's server and the baseline's deployment
    result.stdout.fnmatch_lines(["*--ab-baseline: judged against the baseline's deployment*"])
    result.stdout.no_fnmatch_line("*processes per side*")
