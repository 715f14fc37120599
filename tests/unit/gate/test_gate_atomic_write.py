"""Baseline writes survive a crash: readers see the old file or the new one, never a half-written one.

A CI job is cancelled, the runner is OOM-killed, someone presses Ctrl-C while ``--update-baselines``
writes: the file in the repository must still parse afterwards, or the next session fails on a
broken baseline (or, worse, a truncated history silently restarts). Each test runs the writer in a
real child process and stops it for real: an audit hook (``sys.addaudithook``) stops it at the
rename, the one moment an atomic write depends on, and SIGKILL at random moments covers the rest.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import pytest_tfserving
from pytest_tfserving.gate.baselines import load_baseline, write_baseline
from pytest_tfserving.load.results import Measurement
from tests.unit.gate.gate_factories import MakeMeasurement

NODEID = "perf_suites/test_resnet.py::test_fp32[grpc]"
CHILD_TIMEOUT_S = 60.0
WINDOWS = 2000
OLD_STAMP = "2024-01-01T00:00:00+00:00"

# Writes the baseline described by the spec file (argv[3]) to argv[1], and stops itself at the rename
# (os.replace raises the "os.rename" audit event just before the system call): argv[2] says how.
WRITES_UNTIL_THE_RENAME = """
    import json, os, signal, sys
    from pathlib import Path
    from pytest_tfserving.gate.baselines import write_baseline
    from pytest_tfserving.load.results import Measurement

    target, how = Path(sys.argv[1]), sys.argv[2]
    spec = json.loads(Path(sys.argv[3]).read_text())

    def stop_at_the_rename(event, args):
        if event == "os.rename" and Path(os.fsdecode(args[1])) == target:
            if how == "SIGKILL":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "temp file gone":
                os.unlink(args[0])  # removed by someone else (git clean, a temp reaper) just before
            raise KeyboardInterrupt  # Ctrl-C lands between two bytecodes: here, right before the rename

    sys.addaudithook(stop_at_the_rename)
    try:
        measurement = Measurement.from_dict(spec["measurement"])
        write_baseline(target, spec["nodeid"], measurement, spec["fingerprint"])
    except KeyboardInterrupt:
        print("interrupted at the rename", flush=True)
        sys.exit(3)
    print("wrote the baseline without a rename", flush=True)
"""

# Rewrites argv[1] with the texts of the files argv[2:] in turn, forever: the test SIGKILLs it.
KEEPS_REWRITING = """
    import sys
    from pathlib import Path
    from pytest_tfserving.gate.baselines import _atomic_write

    target = Path(sys.argv[1])
    texts = [Path(p).read_text(encoding="utf-8") for p in sys.argv[2:]]
    print("rewriting", flush=True)
    while True:
        for text in texts:
            _atomic_write(target, text)
"""


def child_env() -> dict[str, str]:
    """The child imports the same ``pytest_tfserving`` as this test (a mutation tester's copy included)."""
    root = str(Path(pytest_tfserving.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-u", "-c", textwrap.dedent(script), *args]


def spec_file(path: Path, measurement: Measurement, fingerprint: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"nodeid": NODEID, "measurement": measurement.to_dict(),
                                "fingerprint": fingerprint}))
    return path


@pytest.mark.parametrize("how", ["SIGKILL", "KeyboardInterrupt", "temp file gone"])
def test_a_crash_between_the_write_and_the_rename_keeps_the_old_baseline(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any], how: str
) -> None:
    directory = tmp_path / "baselines"
    target = directory / "b.json"
    write_baseline(target, NODEID, make_measurement([2.0] * 6), fingerprint, created=OLD_STAMP)
    old_text = target.read_text()
    new = make_measurement([3.0] * 6)
    spec = spec_file(tmp_path / "spec.json", new, fingerprint)

    child = subprocess.run(python(WRITES_UNTIL_THE_RENAME, str(target), how, str(spec)), env=child_env(),
                           capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    said = (child.stdout + child.stderr).strip()

    assert target.read_text() == old_text, f"the interrupted write changed the baseline; the writer: {said}"
    old = load_baseline(target, NODEID)
    assert old is not None and old.created == OLD_STAMP
    leftovers = sorted(p for p in directory.iterdir() if p != target)
    if how == "SIGKILL":
        assert child.returncode == -signal.SIGKILL, said
        # Nothing can clean up after SIGKILL. The temp file holds every byte of the new baseline
        # (the crash came after the write); it is hidden, names its baseline and is no *.json, so
        # nothing takes it for a baseline and a person knows what to delete.
        assert len(leftovers) == 1, leftovers
        assert re.fullmatch(r"\.b\.json\.\w+\.tmp", leftovers[0].name), leftovers[0].name
        written = json.loads(leftovers[0].read_text())
        assert Measurement.from_dict(written["measurement"]) == new
    else:
        # The caller sees the interruption itself, never an error from cleaning up after it.
        assert (child.returncode, child.stdout.strip()) == (3, "interrupted at the rename"), said
        assert leftovers == [], "the interrupted write left its temp file behind"


def test_a_baseline_is_created_with_its_folders_and_readable_by_everyone(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    target = tmp_path / "perf" / "baselines" / "b.json"  # a fresh checkout: no baselines folder yet
    write_baseline(target, NODEID, make_measurement([2.0] * 6), fingerprint)
    # mkstemp makes 0600 files; a baseline is a repository file that CI users and containers read.
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert load_baseline(target, NODEID) is not None


def test_sigkill_at_random_moments_leaves_the_old_or_the_new_file_never_a_partial_one(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    directory, refs = tmp_path / "baselines", tmp_path / "refs"
    target = directory / "b.json"
    # Thousands of windows (about 0.7 MB): the writer spends its time inside writes, not between them.
    write_baseline(target, NODEID, make_measurement([2.0] * WINDOWS), fingerprint)
    write_baseline(refs / "new.json", NODEID, make_measurement([3.0] * WINDOWS), fingerprint)
    texts = {"old": target.read_text(), "new": (refs / "new.json").read_text()}
    (refs / "old.json").write_text(texts["old"])
    rng = random.Random(18)

    for attempt in range(8):
        delay = rng.uniform(0.0, 0.25)
        child = subprocess.Popen(python(KEEPS_REWRITING, str(target), str(refs / "new.json"),
                                        str(refs / "old.json")),
                                 env=child_env(), stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "rewriting"
            time.sleep(delay)
            child.kill()
            child.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=CHILD_TIMEOUT_S)
        text = target.read_text()
        which = [name for name, full in texts.items() if text == full]
        assert which, (f"kill {attempt + 1} after {delay:.3f}s left a partial baseline: {len(text)} "
                       f"characters, the old has {len(texts['old'])}, the new {len(texts['new'])}")
        loaded = load_baseline(target, NODEID)
        assert loaded is not None and len(loaded.measurement.windows) == WINDOWS
