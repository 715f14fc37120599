"""The environment fingerprint, its hardware key and its comparisons, on this machine and on crafted
ones (cpuinfo texts and cgroup trees written to disk, as the kernel lays them out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.baselines import Baseline, history_decision
from pytest_tfserving.gate.fingerprint import (
    KERNEL_FLAGS,
    cgroup_limits,
    collect_fingerprint,
    compare_fingerprints,
    hardware_key,
    hash_model_dir,
    incomparable_reason,
    memory_gib,
    parse_cpuinfo,
)
from tests.unit.gate.gate_factories import build_measurement

# Two CPUs as /proc/cpuinfo shows them (trimmed): the AVX2-only EPYC and one with AVX-512/VNNI.
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
stepping\t: 1
flags\t\t: fpu sse avx512f avx512_vnni
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp i8mm bf16 sve
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1
"""

NEW: dict[str, Any] = {
    "backend": "embedded", "server": "embedded (TF 2.21.0)", "server_build": "embedded (TF 2.21.0)",
    "cpu_model": "AMD EPYC", "cpu_vendor": "AuthenticAMD", "cpu_signature": "family 25 model 1 stepping 1",
    "cpu_flags": ["avx", "avx2", "fma", "f16c"], "logical_cores": 2, "cpu_quota": None, "memory_gib": 8,
    "gpus": [], "gpu_driver": None, "models": {"tiny/fp32": "sha256:1"}, "server_flags": [],
    "python": "3.11.7 (cpython)", "platform": "Linux x86_64",
    "speed_probe": {"kind": "conv2d+matmul", "version": 1, "engine": "tensorflow 2.21.0", "seconds": 0.15},
}
# What `make baselines` recorded before the key held the CPU's features (baselines/*.json).
OLD = {k: v for k, v in NEW.items() if k in ("backend", "server", "cpu_model", "logical_cores", "gpus",
                                              "gpu_driver", "models", "server_flags", "python", "platform")}
H200 = {"index": 0, "name": "NVIDIA H200", "memory_total_mb": 143771, "compute_capability": "9.0"}


def test_collect_on_this_machine() -> None:
    fp = collect_fingerprint(backend="embedded", server="embedded (TF 2.21.0)",
                             models={"tiny/fp32": "sha256:1"}, server_flags=["--port=1"])
    assert fp["backend"] == "embedded" and fp["server"] == fp["server_build"] == "embedded (TF 2.21.0)"
    assert isinstance(fp["cpu_model"], str) and fp["cpu_model"]
    assert isinstance(fp["logical_cores"], int) and fp["logical_cores"] >= 1
    assert isinstance(fp["memory_gib"], int) and fp["memory_gib"] >= 1
    assert isinstance(fp["gpus"], list)
    assert set(fp["cpu_flags"]) <= set(KERNEL_FLAGS)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        flags = next(line for line in lines if line.startswith(("flags", "Features")))
        assert ("avx2" in fp["cpu_flags"]) == (" avx2 " in flags + " ")
        assert fp["cpu_signature"] != "unknown" and fp["cpu_vendor"] != "unknown"
    assert fp["speed_probe"]["seconds"] > 0, fp["speed_probe"]
    key = hardware_key(fp)
    assert f"cores={fp['logical_cores']}" in key and "server build=embedded (TF 2.21.0)" in key
    assert "cpu flags=" + ",".join(fp["cpu_flags"]) in key


def test_parse_cpuinfo_takes_the_first_cpu_and_only_kernel_flags() -> None:
    cpu = parse_cpuinfo(EPYC_AVX2)
    assert cpu.vendor == "AuthenticAMD"
    assert cpu.signature == "family 25 model 1 stepping 1"
    assert cpu.flags == ("avx", "avx2", "fma", "f16c")  # KERNEL_FLAGS order; sse, sha_ni are not kept
    arm = parse_cpuinfo(ARM)
    assert arm.vendor == "implementer 0x41"
    assert arm.signature == "architecture 8 part 0xd40 variant 0x1 revision 1"
    assert arm.flags == ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve")
    assert parse_cpuinfo("").flags == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cpu_flags": ["avx", "avx2", "fma", "f16c", "avx512_vnni"]},
         "cpu flags: avx,avx2,fma,f16c -> avx,avx2,fma,f16c,avx512_vnni"),
        ({"cpu_signature": "family 26 model 2 stepping 0"},
         "cpu: AuthenticAMD family 25 model 1 stepping 1 (AMD EPYC) -> "
         "AuthenticAMD family 26 model 2 stepping 0 (AMD EPYC)"),
        ({"cpu_vendor": "GenuineIntel"}, "cpu: AuthenticAMD family"),
        ({"logical_cores": 4}, "cores: 2 -> 4"),
        ({"cpu_quota": 1.5}, "cores: 2 -> 2 (quota 1.5)"),
        ({"memory_gib": 16}, "memory: 8 GiB -> 16 GiB"),
        ({"gpus": [H200], "gpu_driver": "550.54.15"}, "gpus: none -> NVIDIA H200 (140 GiB, cc 9.0)"),
    ],
)
def test_hardware_parts_change_the_key_and_are_named(change: dict[str, Any], expected: str) -> None:
    other = {**NEW, **change}
    assert hardware_key(NEW) != hardware_key(other)
    reason = incomparable_reason(NEW, other)
    assert expected in reason, reason
    assert "record on this runner with `make baselines`" in reason
    assert "or judge with --ab-baseline" in reason and "--perf-hardware-mismatch=warn only warns" in reason


def test_the_avx512_runner_against_the_avx2_baseline() -> None:
    fast = {**NEW, "cpu_flags": [*NEW["cpu_flags"], "avx512f", "avx512_vnni"],
            "cpu_signature": "family 26 model 2 stepping 0"}
    reason = incomparable_reason(NEW, fast)
    assert reason.startswith("cpu: ")
    assert "; cpu flags: avx,avx2,fma,f16c -> avx,avx2,fma,f16c,avx512f,avx512_vnni - record" in reason


def test_gpu_key_parts() -> None:
    gpu = {**NEW, "gpus": [H200], "gpu_driver": "550.54.15"}
    assert hardware_key(gpu) == hardware_key({**gpu, "gpu_driver": "550.90.07"})  # same major
    assert "gpu driver: 550 -> 560" in incomparable_reason(gpu, {**gpu, "gpu_driver": "560.28.03"})
    other_cc = {**gpu, "gpus": [{**H200, "compute_capability": "8.0"}]}
    assert "cc 9.0) -> NVIDIA H200 (140 GiB, cc 8.0)" in incomparable_reason(gpu, other_cc)
    mig = {**gpu, "gpus": [{**H200, "memory_total_mb": 18176}]}
    assert hardware_key(gpu) != hardware_key(mig)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"backend": "docker", "server_build": "tensorflow/serving:2.19.1"},
         "backend: embedded -> docker; server build: embedded (TF 2.21.0) -> tensorflow/serving:2.19.1"),
        ({"server_build": "embedded (TF 2.20.0)"},
         "server build: embedded (TF 2.21.0) -> embedded (TF 2.20.0)"),
    ],
)
def test_server_build_is_in_the_key(change: dict[str, Any], expected: str) -> None:
    other = {**NEW, **change}
    assert hardware_key(NEW) != hardware_key(other)
    reason = incomparable_reason(NEW, other)
    assert reason.startswith(expected + " - record on this runner with `make baselines`"), reason
    # --ab-baseline serves both deployments with one backend and build: not offered here.
    assert "or judge with --ab-baseline" not in reason and "--ab-baseline cannot help" in reason


def test_what_does_not_change_timings_stays_out_of_the_key() -> None:
    other = {**NEW, "models": {"tiny/fp32": "sha256:2"}, "server_flags": ["x=1"], "python": "3.12.1",
             "server": "embedded, described otherwise", "cpu_flags": [*NEW["cpu_flags"], "sse4_2"],
             "speed_probe": {**NEW["speed_probe"], "seconds": 0.3}}
    assert hardware_key(other) == hardware_key(NEW)
    assert incomparable_reason(NEW, other) == ""


def test_old_fingerprint_never_matches_a_new_key() -> None:
    assert hardware_key(OLD) != hardware_key(NEW)
    assert "recorded before the hardware key held the CPU's features" in hardware_key(OLD)
    reason = incomparable_reason(OLD, NEW)
    assert reason.startswith(
        "the baseline was recorded before the hardware key held the CPU's features; "
        "record again on this runner with `make baselines`"
    ), reason
    assert "--perf-hardware-mismatch=warn only warns" in reason
    # A fingerprint with the new CPU fields but no server build is old too.
    half = {k: v for k, v in NEW.items() if k != "server_build"}
    assert hardware_key(half) != hardware_key(NEW) and "recorded before" in incomparable_reason(half, NEW)
    assert hardware_key(OLD) == hardware_key(dict(OLD))  # old against old stays as before


def test_compare_lists_readable_differences() -> None:
    a: dict[str, Any] = {"backend": "docker", "server": "tensorflow/serving:2.13.0", "cpu_model": "X",
                         "logical_cores": 8, "gpus": [],
                         "models": {"m/fp32": "sha256:1", "m/int8": "sha256:2"},
                         "server_flags": ["--a=1", "--b=2"], "cpu_flags": ["avx2"]}
    b = {**a, "server": "tensorflow/serving:2.14.0", "logical_cores": 16, "gpus": [{"name": "T4"}],
         "models": {"m/fp32": "sha256:9"}, "server_flags": ["--a=1", "--c=3"],
         "cpu_flags": ["avx2", "avx512f"]}
    diffs = compare_fingerprints(a, b)
    assert "server: tensorflow/serving:2.13.0 -> tensorflow/serving:2.14.0" in diffs
    assert "logical_cores: 8 -> 16" in diffs
    assert "gpus: none -> T4" in diffs
    assert "cpu_flags: avx2 -> avx2,avx512f" in diffs
    assert "model m/fp32: sha256:1 -> sha256:9" in diffs
    assert "model m/int8: sha256:2 -> absent" in diffs
    assert "server_flags: removed ['--b=2'], added ['--c=3']" in diffs
    assert compare_fingerprints(a, dict(a)) == []


def test_speed_probe_is_never_a_difference() -> None:
    slower = {**NEW, "speed_probe": {**NEW["speed_probe"], "seconds": 0.31, "spread": 0.2}}
    assert compare_fingerprints(NEW, slower) == []
    assert compare_fingerprints(OLD, {**OLD, "speed_probe": NEW["speed_probe"]}) == []
    # so a run history is not restarted by it
    old = Baseline("t.py::t", build_measurement([2.0] * 6), dict(NEW), "stamp")
    assert history_decision(old, slower, []) == (True, "same deployment, no significant change")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_limits_lowest_along_the_path(tmp_path: Path) -> None:
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/job.slice/runner.scope/inner\n")
    root = tmp_path / "cgroup"
    _write(root / "job.slice" / "runner.scope" / "inner" / "memory.max", "max")
    _write(root / "job.slice" / "runner.scope" / "memory.max", str(8 * 2**30))
    _write(root / "job.slice" / "memory.max", str(6 * 2**30))
    _write(root / "job.slice" / "runner.scope" / "cpu.max", "150000 100000")
    _write(root / "job.slice" / "cpu.max", "max 100000")
    limits = cgroup_limits(root, proc)
    assert limits.memory_bytes == 6 * 2**30 and limits.cpu_quota == 1.5
    assert memory_gib(16 * 2**30, limits.memory_bytes) == 6  # the container's cap, not the host's
    assert memory_gib(4 * 2**30, limits.memory_bytes) == 4
    assert memory_gib(int(23.5 * 2**30), None) == 24


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    root = tmp_path / "cgroup"
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")  # no limit
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", str(2 * 2**30))
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000")
    limits = cgroup_limits(root, proc)
    assert limits.memory_bytes == 2 * 2**30 and limits.cpu_quota == 2.0
    unlimited = tmp_path / "unlimited"
    _write(unlimited / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    _write(unlimited / "cpu" / "cpu.cfs_quota_us", "-1")
    _write(unlimited / "cpu" / "cpu.cfs_period_us", "100000")
    proc.write_text("4:memory:/\n3:cpu:/\n")
    assert cgroup_limits(unlimited, proc).memory_bytes is None
    assert cgroup_limits(unlimited, proc).cpu_quota is None
    assert cgroup_limits(unlimited, tmp_path / "absent").memory_bytes is None


def test_model_hash_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "1" / "variables").mkdir(parents=True)
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "1" / "variables" / "v.data").write_bytes(b"weights")
    first = hash_model_dir(tmp_path / "1")
    assert first == hash_model_dir(tmp_path / "1") and first.startswith("sha256:")
    (tmp_path / "1" / "variables" / "v.data").write_bytes(b"weightz")
    assert hash_model_dir(tmp_path / "1") != first
    single = tmp_path / "model.tflite"
    single.write_bytes(b"tflite")
    assert hash_model_dir(single).startswith("sha256:")
