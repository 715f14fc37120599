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

import psutil
import pytest

import pytest_tfserving
from pytest_tfserving.gate.baselines import (
    load_baseline,
    remove_stale_temp_files,
    stale_temp_files_line,
    write_baseline,
)
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
                print(f"pid {os.getpid()}", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "temp file gone":
                os.unlink(args[0])  # removed by someone else (git clean, a temp reaper) just before
            if how == "pause":
                print(f"at the rename {os.fsdecode(args[0])}", flush=True)  # a write in progress
                sys.stdin.readline()
                return
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
        # Nothing in the writer can clean up after SIGKILL. The temp file holds every byte of the new baseline
        # (the crash came after the write); it is hidden, names its baseline and is no *.json, so
        # nothing takes it for a baseline and a person knows what to delete.
        assert len(leftovers) == 1, leftovers
        temp = re.fullmatch(r"\.b\.json\.(\d+)\.\w+\.tmp", leftovers[0].name)
        assert temp is not None and f"pid {temp[1]}" == child.stderr.strip(), (leftovers[0].name, said)
        written = json.loads(leftovers[0].read_text())
        assert Measurement.from_dict(written["measurement"]) == new
        # The next session removes it (its writer is gone) and says so in one line.
        assert remove_stale_temp_files(directory) == leftovers
        assert sorted(directory.iterdir()) == [target] and target.read_text() == old_text
        assert stale_temp_files_line(directory, leftovers) == (
            f"removed 1 temp file of interrupted baseline writes from {directory}: {leftovers[0].name}")
    else:
        # The caller sees the interruption itself, never an error from cleaning up after it.
        assert (child.returncode, child.stdout.strip()) == (3, "interrupted at the rename"), said
        assert leftovers == [], "the interrupted write left its temp file behind"


def test_the_sweep_keeps_a_write_in_progress_and_everything_not_ours(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    """Only temp files of our own name pattern whose writer is gone: a live writer's temp file, files
    of other names (an older plugin's temp names without a pid, a user's notes, a folder of that
    name, a link) stay; one named after a live pid but written before that process started (the pid was
    reused, e.g. pytest as pid 7 in every container) goes."""
    directory = tmp_path / "baselines"
    target = directory / "b.json"
    write_baseline(target, NODEID, make_measurement([2.0] * 6), fingerprint, created=OLD_STAMP)
    spec = spec_file(tmp_path / "spec.json", make_measurement([3.0] * 6), fingerprint)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead_pid = finished.pid  # an exited, reaped process
    not_ours = [f".b.json.{dead_pid}.tmp", ".b.json.x7k2lq9s.tmp", f".b.txt.{dead_pid}.x7k2lq9s.tmp",
                f"b.json.{dead_pid}.x7k2lq9s.tmp", f".b.json.{dead_pid}.x7k2lq9s.tmp.orig", "notes.tmp"]
    for name in not_ours:
        (directory / name).write_text("{}")
    (directory / f".c.json.{dead_pid}.folder00.tmp").mkdir()
    (directory / f".e.json.{dead_pid}.symlink0.tmp").symlink_to(target)
    impossible = directory / ".f.json.99999999999999999999.bigpid00.tmp"  # no process can have that pid
    impossible.write_text("{}")
    reused = directory / f".d.json.{os.getpid()}.reused00.tmp"
    reused.write_text("{}")
    started = psutil.Process().create_time()
    os.utime(reused, (started - 60, started - 60))  # written a minute before this process started

    writer = subprocess.Popen(python(WRITES_UNTIL_THE_RENAME, str(target), "pause", str(spec)),
                              env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdin is not None
        said = writer.stdout.readline().strip()
        assert said.startswith("at the rename "), said
        in_progress = Path(said.removeprefix("at the rename "))
        assert in_progress.exists() and f".{writer.pid}." in in_progress.name

        assert remove_stale_temp_files(directory) == [reused, impossible]

        assert in_progress.exists(), "the sweep removed the temp file of a write in progress"
        assert all((directory / name).exists() for name in not_ours), "the sweep removed a file not ours"
        assert (directory / f".c.json.{dead_pid}.folder00.tmp").is_dir()
        assert (directory / f".e.json.{dead_pid}.symlink0.tmp").is_symlink()
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        assert writer.wait(timeout=CHILD_TIMEOUT_S) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.communicate(timeout=CHILD_TIMEOUT_S)
    written = load_baseline(target, NODEID)
    assert written is not None and written.created != OLD_STAMP, "the paused write did not complete"
    assert remove_stale_temp_files(directory) == [] and remove_stale_temp_files(tmp_path / "absent") == []


def test_the_line_names_three_files_and_counts_the_rest(tmp_path: Path) -> None:
    removed = [tmp_path / f".t{i}.json.1{i}.abc.tmp" for i in range(5)]
    assert stale_temp_files_line(tmp_path, removed) == (
        f"removed 5 temp files of interrupted baseline writes from {tmp_path}: "
        ".t0.json.10.abc.tmp, .t1.json.11.abc.tmp, .t2.json.12.abc.tmp and 2 more")


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
