"""The variant cache under real process crashes and real concurrent builders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pytest_tfserving.models.variants import TFLITE_FILE, build_info, build_model_variant

WORKER = Path(__file__).with_name("build_worker.py")
KILL_SAMPLES = 3000  # a calibration long enough (about a second) to be killed in the middle


def _worker(source: Path, cache_dir: Path, variant: str, samples: int) -> subprocess.Popen[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(source), str(cache_dir), variant, str(samples)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_killed_build_leaves_no_variant(tiny_savedmodel: Path, tmp_path: Path) -> None:
    process = _worker(tiny_savedmodel, tmp_path, "int8", samples=KILL_SAMPLES)
    try:
        deadline = time.monotonic() + 180
        while not list(tmp_path.glob(".tmp-*")):
            assert process.poll() is None, f"worker exited early: {process.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "worker never started building"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    entries = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert entries == [], "the build finished before the kill; the test proved nothing"
    assert list(tmp_path.glob(".tmp-*")), "a killed build leaves its hidden temp dir, never an entry"

    # The lock died with the process; the next build cleans the leftover and succeeds.
    spec = build_model_variant(tiny_savedmodel, name="tiny", variant="int8-dynamic", cache_dir=tmp_path)
    assert (spec.base_path / "1" / TFLITE_FILE).is_file()
    rng = np.random.default_rng(1)  # the worker's samples: the same cache entry it was building
    samples = [{"images": rng.random((1, 8, 8, 3), dtype=np.float32)} for _ in range(KILL_SAMPLES)]
    rebuilt = build_model_variant(
        tiny_savedmodel, name="tiny", variant="int8", cache_dir=tmp_path, representative_dataset=samples
    )
    assert not list(tmp_path.glob(".tmp-*"))
    assert (rebuilt.base_path / "1" / TFLITE_FILE).is_file()


def test_concurrent_builders_share_one_build(tiny_savedmodel: Path, tmp_path: Path) -> None:
    processes = [_worker(tiny_savedmodel, tmp_path, "fp16", samples=0) for _ in range(2)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    assert results[0] == results[1], "both builders must get the same entry and the same build"
    entries = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    spec = build_model_variant(tiny_savedmodel, name="tiny", variant="fp16", cache_dir=tmp_path)
    assert str(spec.base_path) == results[0]["base_path"]
    assert build_info(spec)["build_id"] == results[0]["build_id"]
    assert (spec.base_path / "1" / TFLITE_FILE).stat().st_size > 0
