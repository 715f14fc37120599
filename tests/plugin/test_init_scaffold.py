"""What `pytest-tfserving init` writes works as written: its perf test measures and records a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tfserving.scaffold import main
from tests.plugin.conftest import FAST_ARGS


def test_initialised_repository_measures_and_records(
    pytester: pytest.Pytester, shared_model_cache: Path
) -> None:
    assert main(["init", str(pytester.path)]) == 0
    # A session of its own (a subprocess): the scaffold's conftest imports keras as a user's would.
    result = pytester.runpytest_subprocess(
        "-m", "perf", *FAST_ARGS, f"--tfserving-model-cache={shared_model_cache}", "--update-baselines"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tests/perf/test_tfserving_perf.py::test_grpc_latency*"])
    written = sorted(p.name for p in (pytester.path / "baselines").iterdir())
    assert written == ["README.md", "tests__perf__test_tfserving_perf__test_grpc_latency.json"]
    baseline = json.loads((pytester.path / "baselines" / written[1]).read_text())
    assert baseline["nodeid"] == "tests/perf/test_tfserving_perf.py::test_grpc_latency"
