"""Errors read like errors, not crashes (#19): a broken baseline file or a crashed server fails its
test (a server that never gets ready, its setup) with a message that names what is wrong and the
fix, with no traceback through the plugin's frames; the table row and the short summary carry the
message; the broken file stays as it was. Real embedded server, real tiny model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.plugin.conftest import FAST_ARGS

BROKEN = """
import pytest

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_bad_json(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_wrong_schema(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""
CONTENTS = {
    "test_broken__test_bad_json.json": b"{not json",
    "test_broken__test_wrong_schema.json": b'{"schema_version": "one", "nodeid": "x"}\n',
}
CRASH = """
import os
import signal
import threading

import pytest

@pytest.mark.perf
def test_crash_mid_measurement(tfserving_server, perf):
    killer = threading.Timer(1.0, os.kill, (tfserving_server.pid, signal.SIGKILL))
    killer.start()
    try:
        perf.measure(tfserving_server, warmup_s=0.3, window_s=0.5, min_windows=4, max_windows=4)
    finally:
        killer.join()
"""
# A traceback entry in the plugin's code as pytest prints one: "path.py:123: in name" (short),
# "path.py:123: " or "path.py:123: ErrorName" (long). A server log line naming a file is not one.
PLUGIN_FRAME = re.compile(r"^\S*pytest_tfserving/\S+\.py:\d+:( in \w+| \w+)? *$", re.MULTILINE)


def measure_line(path: Path) -> int:
    """The line number of the first ``perf.measure`` call in ``path``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if "perf.measure" in line)


def assert_no_plugin_traceback(output: str) -> None:
    assert not PLUGIN_FRAME.search(output), output
    assert "Traceback (most recent call last)" not in output, output
    assert "pytest_tfserving.gate" not in output, output  # an exception's qualified name


def test_broken_baseline_fails_with_the_file_the_problem_and_the_fix(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_broken=BROKEN)
    baselines = perf_project.path / "baselines"
    baselines.mkdir()
    for name, content in CONTENTS.items():
        (baselines / name).write_bytes(content)

    result = perf_project.runpytest(*FAST_ARGS, "--update-baselines", "-rf")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert_no_plugin_traceback(output)
    result.stdout.fnmatch_lines([
        "*_ test_bad_json _*",
        "BaselineError: baseline baselines/test_broken__test_bad_json.json is not valid JSON (*); "
        "fix or delete baselines/test_broken__test_bad_json.json and rerun with --update-baselines*",
        f"(raised at test_broken.py:{measure_line(perf_project.path / 'test_broken.py')})",
        "*_ test_wrong_schema _*",
        "BaselineError: baseline baselines/test_broken__test_wrong_schema.json has schema_version 'one'*"
        "fix or delete baselines/test_broken__test_wrong_schema.json*",
    ])
    # The table has a row for each; the short summary (cut to the terminal's width, as pytest cuts
    # every one) starts with the error, not the plugin's module path.
    result.stdout.fnmatch_lines_random([
        "test_broken.py::test_bad_json*error*",
        "*error: BaselineError: baseline baselines/test_broken__test_bad_json.json*",
        "test_broken.py::test_wrong_schema*error*",
        "FAILED test_broken.py::test_bad_json - Failed: BaselineError: baseline*",
        "FAILED test_broken.py::test_wrong_schema - Failed: BaselineError: baseline*",
    ])
    for name, content in CONTENTS.items():
        assert (baselines / name).read_bytes() == content, name
    assert sorted(p.name for p in baselines.iterdir()) == sorted(CONTENTS)  # no temp file, no new one


def test_crashed_server_fails_with_its_log_not_a_traceback(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_crash=CRASH)
    result = perf_project.runpytest(*FAST_ARGS, "-rf")
    result.assert_outcomes(failed=1)
    assert_no_plugin_traceback(result.stdout.str())
    result.stdout.fnmatch_lines([
        "*_ test_crash_mid_measurement _*",
        "ServerCrashed: embedded server (pid *) exited with status -9; log *server.log, last lines:*",
    ])
    result.stdout.fnmatch_lines_random([
        "test_crash.py::test_crash_mid_measurement*error*",
        "FAILED test_crash.py::test_crash_mid_measurement - Failed: ServerCrashed: *",
    ])
    result.stdout.no_fnmatch_line("*regression*")


def test_server_that_never_gets_ready_is_a_setup_error_with_its_log(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_slow_start=CRASH.replace("test_crash_mid_measurement", "test_never_ready"))
    result = perf_project.runpytest(*FAST_ARGS, "--tfserving-startup-timeout=0.01", "-rE")
    result.assert_outcomes(errors=1)
    assert_no_plugin_traceback(result.stdout.str())
    result.stdout.fnmatch_lines([
        "*_ ERROR at setup of test_never_ready _*",
        "ReadinessTimeout: embedded server (pid *) not ready after 0s: *raise the startup timeout*",
        "ERROR test_slow_start.py::test_never_ready - Failed: ReadinessTimeout: *",
    ])


def test_full_trace_keeps_the_traceback_for_debugging_the_plugin(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_broken=BROKEN)
    (perf_project.path / "baselines").mkdir()
    (perf_project.path / "baselines" / "test_broken__test_bad_json.json").write_bytes(b"{not json")
    result = perf_project.runpytest(*FAST_ARGS, "--full-trace", "-k", "bad_json")
    result.assert_outcomes(failed=1, deselected=1)
    assert PLUGIN_FRAME.search(result.stdout.str())
