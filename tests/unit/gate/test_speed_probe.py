"""The machine-speed probe: real children timing real work, the fallbacks when TensorFlow cannot be
imported or crashes, and the note shown next to verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.speed_probe import SHARED_FOR_S, machine_speed, run_probe, speed_note

TF = {"kind": "conv2d+matmul", "version": 1, "engine": "tensorflow 2.21.0"}


def fp(seconds: float | None, **probe: Any) -> dict[str, Any]:
    return {"backend": "embedded", "speed_probe": {**TF, "seconds": seconds, **probe}}


def test_probe_times_tensorflow_once_per_process() -> None:
    first = machine_speed()
    assert first["engine"].startswith("tensorflow "), first
    assert first["kind"] == "conv2d+matmul" and first["version"] == 1
    assert 0 < first["seconds"] < 10 and first["repetitions"] >= 5
    assert first["threads"] == 1, "TensorFlow's work spread over more than one thread"
    assert 0 < first["cpu_load"] < 1.25
    start = time.perf_counter()
    assert machine_speed() is first
    assert time.perf_counter() - start < 0.01  # cached, not measured again


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_busy_core_is_reported_as_busy_not_as_slower_hardware() -> None:
    """The probe and a busy loop pinned to one core: the probe gets about half of it. Its figure
    (CPU time) stays the core's speed; the wall time doubles; the note says the runner was busy."""
    cpu = min(os.sched_getaffinity(0))
    spin = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})  # the probe's child inherits it
        loaded = run_probe("numpy")
    finally:
        os.sched_setaffinity(0, mask)
        busy.kill()
        busy.wait()
    assert loaded["cpu_load"] < 0.8, loaded
    assert loaded["wall_seconds"] > 1.4 * loaded["seconds"], loaded
    alone = {**loaded, "seconds": loaded["seconds"] * 1.5, "cpu_load": 1.0}
    note = speed_note({"speed_probe": alone}, {"speed_probe": loaded})
    assert note is not None and note.endswith(f"busy: this probe got {loaded['cpu_load']:.0%} of a core")


def test_numpy_probe() -> None:
    probe = run_probe("numpy")
    assert probe["engine"].startswith("numpy ") and probe["kind"] == "matmul" and probe["seconds"] > 0
    assert probe["threads"] == 1, "numpy's BLAS ran on more than one thread"


def _shadow_tensorflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """A ``tensorflow`` module ahead of the real one on the child's path."""
    (tmp_path / "tensorflow.py").write_text(body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))


def test_without_tensorflow_numpy_does_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _shadow_tensorflow(tmp_path, monkeypatch, "raise ImportError('no tensorflow on this runner')\n")
    probe = run_probe()
    assert probe["engine"].startswith("numpy ") and probe["seconds"] > 0 and "note" not in probe


CRASH = "import os, sys\nsys.stderr.write('illegal instruction\\n')\nos.abort()\n"


def test_crashing_tensorflow_falls_back_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _shadow_tensorflow(tmp_path, monkeypatch, CRASH)
    probe = run_probe()
    assert probe["engine"].startswith("numpy ") and probe["seconds"] > 0
    assert probe["note"].startswith("speed probe exited ") and "illegal instruction" in probe["note"]


def test_speed_note() -> None:
    assert speed_note(fp(0.99), fp(0.52)) == (
        "this runner measured 1.9x faster than the recording one (speed probe 0.52 s vs 0.99 s)"
    )
    assert speed_note(fp(0.15), fp(0.3)) == (
        "this runner measured 2x slower than the recording one (speed probe 0.3 s vs 0.15 s)"
    )
    assert speed_note(fp(1.0), fp(1.07)) == (
        "this runner measured 1.07x slower than the recording one (speed probe 1.07 s vs 1 s)"
    )
    # A probe that got only part of its core says so: the runner was busy, not slow.
    assert speed_note(fp(0.15, cpu_load=0.98), fp(0.76, cpu_load=0.21)) == (
        "this runner measured 5.1x slower than the recording one (speed probe 0.76 s vs 0.15 s); "
        "busy: this probe got 21% of a core"
    )
    assert speed_note(fp(0.76, cpu_load=0.5), fp(0.15, cpu_load=0.79)).endswith(  # type: ignore[union-attr]
        "busy: this probe got 79% of a core and the recording one got 50% of a core"
    )
    assert speed_note(fp(1.0), fp(1.04, cpu_load=0.2)) is None  # within 5 %
    assert speed_note(fp(1.04), fp(1.0)) is None
    assert speed_note(fp(1.0), {"backend": "embedded"}) is None  # recorded before the probe
    assert speed_note(None, fp(1.0)) is None
    assert speed_note(fp(1.0), fp(None, error="speed probe did not finish")) is None
    # different work is not compared: numpy against TensorFlow, or another probe version
    assert speed_note(fp(1.0), fp(0.5, kind="matmul", engine="numpy 2.4.6")) is None
    assert speed_note(fp(1.0), fp(0.5, version=2)) is None
    assert speed_note(fp(1.0), fp(0.5, engine="tensorflow 2.22.0")) is not None  # same work, newer TF


def test_the_probe_is_shared_between_processes_for_a_while(tmp_path: Path) -> None:
    """A fresh probe from another process is used as it is; a stale one is measured again and the
    new figure replaces it for the next processes."""
    shared = tmp_path / "probe.json"
    recorded = {**TF, "seconds": 123.0, "engine": "tensorflow 2.21.0"}
    shared.write_text(json.dumps({"measured_at": 1000.0, "probe": recorded}))
    assert machine_speed(shared, clock=lambda: 1000.0 + SHARED_FOR_S - 1) == recorded
    remeasured = machine_speed(shared, clock=lambda: 1000.0 + SHARED_FOR_S + 1)
    assert remeasured["seconds"] != 123.0 and 0 < remeasured["seconds"] < 10
    assert json.loads(shared.read_text())["probe"] == remeasured


def test_speed_mismatch_makes_a_same_key_baseline_incomparable_with_the_fix_named() -> None:
    """The stored judge: a baseline whose probe ran beyond --perf-speed-mismatch faster or slower is
    incomparable, whatever its numbers say; within it, judged as before."""
    from pytest_tfserving.gate.baselines import Baseline
    from pytest_tfserving.gate.fingerprint import speed_mismatch_reason
    from pytest_tfserving.gate.judge import judge
    from tests.unit.gate.gate_factories import FINGERPRINT, build_measurement

    recorded, now = {**FINGERPRINT, **fp(0.162)}, {**FINGERPRINT, **fp(0.325)}
    reason = speed_mismatch_reason(recorded, now, 1.4)
    assert reason.startswith("this runner measured 2x slower than the recording one (speed probe 0.325 s "
                             "vs 0.162 s), beyond --perf-speed-mismatch 1.4x: the same hardware at another "
                             "speed - record on this runner with `make baselines`"), reason
    assert "--ab-baseline" in reason and reason.endswith("--perf-hardware-mismatch=warn only warns")
    assert speed_mismatch_reason(now, recorded, 1.4).startswith("this runner measured 2x faster")
    assert speed_mismatch_reason(recorded, now, 2.5) == ""  # 2x is within 2.5x
    assert speed_mismatch_reason(recorded, {**FINGERPRINT, **fp(0.22)}, 1.4) == ""  # 1.36x
    assert speed_mismatch_reason(recorded, dict(FINGERPRINT), 1.4) == ""  # no probe: nothing to say

    baseline = Baseline("t.py::test", build_measurement([82.0] * 8), recorded, "t")
    slower = build_measurement([136.0] * 8)
    verdicts = judge(baseline, slower, now, min_runs=1)
    assert {v.verdict for v in verdicts} == {"incomparable"}
    assert all(v.reason == reason and v.change is not None for v in verdicts)
    judged = judge(baseline, slower, now, min_runs=1, speed_mismatch=2.5)
    assert "incomparable" not in {v.verdict for v in judged}
    # Another hardware key stays the hardware key's incomparable, not the speed's.
    elsewhere = judge(baseline, slower, {**now, "cpu_model": "Other CPU"}, min_runs=1)
    assert all(v.verdict == "incomparable" and "speed" not in v.reason for v in elsewhere)
