"""A short, fixed piece of work timed on this machine, so a surprising verdict explains itself.

Two runners with the same hardware key can still differ in speed (another host under a noisy
neighbour, a throttled cloud instance, a different microcode). The probe is recorded with each
baseline and shown next to verdicts ("this runner measured 1.9x faster than the recording one"). It
is information only: it never enters the hardware key or the fingerprint comparison, since it always
differs a little.

It runs in a child process, once per process that asks: a fresh interpreter is the only place
where TensorFlow's thread pools can still be fixed (one thread, so the figure is the speed of a
core, not of however many cores this runner has; those are in the hardware key), it keeps the
probe's memory out of the pytest process, and it hides the GPUs (the probe times the CPU; a GPU's
kind is in the key). Without TensorFlow, numpy does comparable work and the record says so.

The figure compared is CPU time, the core's own speed; how much of its core the probe got is
recorded beside it, so a runner that was busy says so instead of looking like slower hardware.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PROBE_VERSION = 1
REPETITIONS = 7  # timed repetitions after one warm-up; the median is recorded
ITERATIONS = 30  # work items per repetition: about 0.13 s on one core of a 2021 server CPU
AGREE_WITHIN = 0.05  # speeds closer than this are not worth a note
BUSY_BELOW = 0.8  # a probe that got less of its core than this shared the machine with other work
TIMEOUT_S = 180.0  # importing TensorFlow on a busy runner can take a while

# The child's environment: one thread everywhere, no GPU, TensorFlow quiet.
CHILD_ENV: Mapping[str, str] = {
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _thread_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of each thread of this process; empty off Linux."""
    ticks = {}
    with contextlib.suppress(OSError):
        for task in os.scandir("/proc/self/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"{task.path}/stat") as fh:
                    fields = fh.read().rpartition(")")[2].split()
                ticks[task.name] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def _working_threads(before: Mapping[str, int], after: Mapping[str, int]) -> int | None:
    """How many threads did a quarter or more of the work: 1 when the settings held (the calling
    thread's dispatching stays below that). The machine's load cannot change this count, unlike CPU
    seconds per wall second."""
    spent = {tid: after[tid] - before.get(tid, 0) for tid in after}
    total = sum(spent.values())
    return sum(1 for t in spent.values() if t >= 0.25 * total) if total > 0 else None


def _time_repetitions(step: Callable[[], object]) -> dict[str, Any]:
    """CPU and wall seconds of each repetition, and the threads that did the work."""
    step()  # warm-up: tracing, kernel selection, page faults
    cpu_times, wall_times = [], []
    ticks = _thread_ticks()
    for _ in range(REPETITIONS):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(ITERATIONS):
            step()
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
    return {"cpu_times": cpu_times, "wall_times": wall_times,
            "threads": _working_threads(ticks, _thread_ticks())}


def _tensorflow_work() -> dict[str, Any]:
    """A 3x3 convolution and a matrix product, the two kernels most models spend their time in."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = tf.random.Generator.from_seed(1234)
    image = rng.normal((1, 56, 56, 64))
    kernel = rng.normal((3, 3, 64, 64))
    a = rng.normal((384, 384))
    b = rng.normal((384, 384))

    # Inputs are arguments, not captured constants: the graph optimizer would fold constants away.
    @tf.function
    def work(image: Any, kernel: Any, a: Any, b: Any) -> Any:
        conv = tf.nn.conv2d(image, kernel, strides=1, padding="SAME")
        return tf.reduce_sum(conv) + tf.reduce_sum(tf.matmul(a, b))

    timed = _time_repetitions(lambda: work(image, kernel, a, b).numpy())
    return {"kind": "conv2d+matmul", "engine": f"tensorflow {tf.__version__}", **timed}


def _numpy_work() -> dict[str, Any]:
    """Without TensorFlow: matrix products of about the same arithmetic (BLAS, one thread)."""
    import numpy as np

    rng = np.random.default_rng(1234)
    a = rng.standard_normal((512, 512), dtype=np.float32)
    b = rng.standard_normal((512, 512), dtype=np.float32)
    timed = _time_repetitions(lambda: float((a @ b).sum()))
    return {"kind": "matmul", "engine": f"numpy {np.__version__}", **timed}


def _child(engine: str) -> dict[str, Any]:
    """What the child prints. ``seconds``: the median CPU time of a repetition, the core's speed,
    which other work on the machine changes far less than wall time (10 runs on a 2-core EPYC at a
    load of 4-6: 0.13-0.17 s of CPU, 0.14-0.34 s of wall). ``cpu_load``: CPU per wall second; below
    1 the probe waited for its core (a busy runner, or a hypervisor's steal), and the note says so."""
    if engine == "numpy":
        found = _numpy_work()
    else:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            found = _numpy_work()
        else:
            found = _tensorflow_work()
    cpu, wall = found.pop("cpu_times"), found.pop("wall_times")
    median = statistics.median(cpu)
    return {
        **found,
        "version": PROBE_VERSION,
        "seconds": round(median, 5),
        "wall_seconds": round(statistics.median(wall), 5),
        "cpu_load": round(sum(cpu) / sum(wall), 2),
        "spread": round((max(cpu) - min(cpu)) / median, 4),
        "repetitions": REPETITIONS,
    }


def run_probe(engine: str = "auto", timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Run the probe in a child process: ``{kind, version, engine, seconds, ...}`` or ``{error}``.

    ``engine``: "auto" (TensorFlow when importable, else numpy) or "numpy". A child that crashes
    (TensorFlow aborting on an unsupported CPU) is retried with numpy, and the record says why.
    """
    env = {**os.environ, **CHILD_ENV}
    command = [sys.executable, "-m", "pytest_tfserving.gate.speed_probe", engine]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = f"speed probe did not finish: {exc}"
    else:
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            try:
                result: dict[str, Any] = json.loads(lines[-1])
                return result
            except json.JSONDecodeError:
                pass
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        failure = f"speed probe exited {done.returncode}: {last[:200]}"
    if engine != "numpy":
        fallback = run_probe("numpy", timeout_s)
        return {**fallback, "note": failure} if "seconds" in fallback else {"error": failure}
    return {"error": failure}


SHARED_FOR_S = 600.0  # pytest processes of one CI job within this long share one probe


def shared_probe_path() -> Path:
    """Where this machine's latest probe is kept for other processes: per user and per boot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown-boot"
    return Path(tempfile.gettempdir()) / f"pytest-tfserving-speed-probe-{os.getuid()}-{boot}.json"


@functools.cache
def machine_speed(path: Path | None = None, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """The probe on this machine: about 1 s of work, plus importing TensorFlow in the child (5 s in
    all on an idle 2-core EPYC, 6-13 s on a busy one). Measured once per process, and shared with
    the other pytest processes of the next ``SHARED_FOR_S`` seconds through a file (pytester runs,
    xdist workers, the several pytest calls of one CI job), so they do not pay for it again."""
    path = path or shared_probe_path()
    try:
        shared = json.loads(path.read_text())
        fresh = 0 <= clock() - float(shared["measured_at"]) < SHARED_FOR_S
        if fresh and shared["probe"].get("version") == PROBE_VERSION:
            return dict(shared["probe"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    probe = run_probe()
    with contextlib.suppress(OSError):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"measured_at": clock(), "probe": probe}))
        os.replace(temporary, path)
    return probe


def probe_seconds(fingerprint: Mapping[str, Any] | None) -> tuple[float, str] | None:
    """(seconds, what was timed) from a fingerprint's probe; None when it has none."""
    probe = (fingerprint or {}).get("speed_probe")
    if not isinstance(probe, Mapping) or not isinstance(probe.get("seconds"), (int, float)):
        return None
    if probe["seconds"] <= 0:
        return None
    engine = str(probe.get("engine", "")).split(" ")[0]
    return float(probe["seconds"]), f"{probe.get('kind')}/{probe.get('version')}/{engine}"


def _ratio_text(ratio: float) -> str:
    """1.07, 1.9, 2, 5.1: two decimals near 1, where they matter, one beyond."""
    return f"{ratio:.{2 if ratio < 1.5 else 1}f}".rstrip("0").rstrip(".")


def _comparable_probes(
    baseline_fp: Mapping[str, Any] | None, current_fp: Mapping[str, Any] | None
) -> tuple[float, float] | None:
    """(baseline's seconds, this runner's) when both timed the same work; None when either fingerprint
    has no probe or they timed different work (another probe version, or numpy against TensorFlow)."""
    base, current = probe_seconds(baseline_fp), probe_seconds(current_fp)
    if base is None or current is None or base[1] != current[1]:
        return None
    return base[0], current[0]


def speed_ratio(baseline_fp: Mapping[str, Any] | None, current_fp: Mapping[str, Any] | None) -> float | None:
    """How many times faster this runner did the probe's work than the baseline's runner (below 1:
    slower); None when the probes cannot be compared."""
    probes = _comparable_probes(baseline_fp, current_fp)
    return probes[0] / probes[1] if probes else None


def speed_comparison(baseline_fp: Mapping[str, Any] | None, current_fp: Mapping[str, Any] | None) -> str:
    """'this runner measured 2x slower than the recording one (speed probe 0.325 s vs 0.162 s)';
    "" when the probes cannot be compared."""
    probes = _comparable_probes(baseline_fp, current_fp)
    if probes is None:
        return ""
    base, current = probes
    ratio = base / current
    faster = ratio > 1
    how = f"{_ratio_text(ratio if faster else 1 / ratio)}x {'faster' if faster else 'slower'}"
    return f"this runner measured {how} than the recording one (speed probe {current:.3g} s vs {base:.3g} s)"


def speed_note(baseline_fp: Mapping[str, Any] | None, current_fp: Mapping[str, Any] | None) -> str | None:
    """How much faster or slower this runner did the probe's work than the baseline's runner.

    None when either fingerprint has no probe, when they timed different work (another probe
    version, or numpy against TensorFlow), or when the two agree within 5 %.
    """
    ratio = speed_ratio(baseline_fp, current_fp)
    if ratio is None or max(ratio, 1 / ratio) <= 1 + AGREE_WITHIN:
        return None
    note = speed_comparison(baseline_fp, current_fp)
    busy = [f"{side} got {load:.0%} of a core" for side, fp in (("this probe", current_fp),
                                                                 ("the recording one", baseline_fp))
            if (load := _cpu_load(fp)) is not None and load < BUSY_BELOW]
    return f"{note}; busy: {' and '.join(busy)}" if busy else note


def _cpu_load(fingerprint: Mapping[str, Any] | None) -> float | None:
    load = ((fingerprint or {}).get("speed_probe") or {}).get("cpu_load")
    return float(load) if isinstance(load, (int, float)) else None


if __name__ == "__main__":  # the child: python -m pytest_tfserving.gate.speed_probe [auto|numpy]
    print(json.dumps(_child(sys.argv[1] if len(sys.argv) > 1 else "auto")))
