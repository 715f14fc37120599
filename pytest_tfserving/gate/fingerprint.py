"""Where a measurement was taken: hardware, server and models, so baselines compare like with like.

``hardware_key`` decides comparability: it holds what changes timings (the CPU and the ISA features
its kernels are chosen by, the cores and memory this process may use, the GPUs, and the server
build). A baseline with another key is not judged; ``incomparable_reason`` says what differs and
what to do. The rest of the fingerprint is shown as differences to explain a surprising result.
The speed probe (``speed_probe.py``) is recorded here but compared by neither: it is a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_tfserving.gate.speed_probe import machine_speed, speed_comparison, speed_ratio
from pytest_tfserving.models.identity import model_identity
from pytest_tfserving.serving.fields import fingerprinted, spec_field
from pytest_tfserving.serving.spec import ServerSpec

FINGERPRINT_KEYS: tuple[str, ...] = (
    "backend", "server", "server_build", "cpu_model", "cpu_vendor", "cpu_signature", "cpu_flags",
    "logical_cores", "cpu_quota", "memory_gib", "gpus", "gpu_driver", "models", "server_flags",
    "python", "platform",
)
# Recorded, never compared: the probe's time differs a little between any two runs.
NOT_COMPARED: frozenset[str] = frozenset({"speed_probe"})
# What the hardware key needs; a fingerprint without these was recorded before the key held them.
KEY_FIELDS: tuple[str, ...] = ("cpu_vendor", "cpu_signature", "cpu_flags", "memory_gib", "server_build")

# The CPU features that decide which kernels TensorFlow, oneDNN and XNNPACK run, by Linux's names in
# /proc/cpuinfo (x86 "flags", aarch64 "Features"). The fingerprint records those present. Adding
# one makes baselines recorded on CPUs that have it incomparable, until recorded again.
KERNEL_FLAGS: tuple[str, ...] = (
    "avx", "avx2", "fma", "f16c",
    "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
    "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
)

LEGACY_NOTE = "recorded before the hardware key held the CPU's features; record again on this runner"
RECORD_HOW = "with `make baselines` (or 5 sessions of `pytest -m perf --update-baselines`)"
RECORD_FIX = f"record on this runner {RECORD_HOW}"
AB_FIX = (
    "or judge with --ab-baseline, which measures the baseline's deployment beside this one on this "
    "machine"
)
NO_AB_FIX = "--ab-baseline cannot help: one session serves one backend and server build"
WARN_NOTE = "--perf-hardware-mismatch=warn only warns"
SERVER_PARTS = ("backend", "server build")


# -- this machine ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpuId:
    """What /proc/cpuinfo says about the first CPU: who made it, which one, which kernels it runs."""

    vendor: str  # "AuthenticAMD", "GenuineIntel", "implementer 0x41" (aarch64)
    signature: str  # "family 25 model 1 stepping 1"; aarch64: architecture, part, variant, revision
    flags: tuple[str, ...]  # the KERNEL_FLAGS present, in KERNEL_FLAGS order


def parse_cpuinfo(text: str) -> CpuId:
    """The first processor block of /proc/cpuinfo (x86 or aarch64 layout)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    present = set((fields.get("flags") or fields.get("Features") or "").split())
    flags = tuple(f for f in KERNEL_FLAGS if f in present)
    if "vendor_id" in fields or "cpu family" in fields:
        signature = " ".join(
            f"{name} {fields.get(key, '?')}"
            for name, key in (("family", "cpu family"), ("model", "model"), ("stepping", "stepping"))
        )
        return CpuId(fields.get("vendor_id", "unknown"), signature, flags)
    if "CPU implementer" in fields:
        signature = " ".join(
            f"{name} {fields.get(key, '?')}"
            for name, key in (("architecture", "CPU architecture"), ("part", "CPU part"),
                              ("variant", "CPU variant"), ("revision", "CPU revision"))
        )
        return CpuId(f"implementer {fields['CPU implementer']}", signature, flags)
    return CpuId(platform.processor() or "unknown", platform.machine() or "unknown", flags)


def cpu_id(path: Path | str = "/proc/cpuinfo") -> CpuId:
    """This machine's CpuId; without /proc/cpuinfo (macOS, Windows) what ``platform`` knows."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return parse_cpuinfo(text)


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def logical_cores() -> int:
    """CPUs this process may run on (the affinity mask under containers/taskset), else all of them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class CgroupLimits:
    """The container's limits: a memory cap in bytes and a CPU quota in cores (None: no limit)."""

    memory_bytes: int | None
    cpu_quota: float | None


def _cgroup_files(root: Path, proc_cgroup: str, controller: str, name: str) -> list[str]:
    """The contents of ``name`` in this process's cgroup and every ancestor (a limit set on a parent
    holds too). ``controller`` "" is cgroup v2's unified tree; else a v1 controller's own mount."""
    found = []
    for line in proc_cgroup.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controller not in (controllers.split(",") if controllers else [""]):
            continue
        base = root
        if controller:
            base = root / controllers if (root / controllers).is_dir() else root / controller
        where = PurePosixPath(path or "/")
        for directory in (where, *where.parents):
            file = base / directory.relative_to("/") / name
            with contextlib.suppress(OSError):
                found.append(file.read_text().strip())
    return found


NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def _ints(values: Iterable[str]) -> list[int]:
    return [int(v) for v in values if v.strip().lstrip("-").isdigit()]


def cgroup_limits(
    root: Path | str = "/sys/fs/cgroup", proc_cgroup: Path | str = "/proc/self/cgroup"
) -> CgroupLimits:
    """The memory and CPU limits of this process's cgroup, v2 (memory.max, cpu.max) or v1
    (memory.limit_in_bytes, cpu.cfs_quota_us); the lowest along the path wins."""
    root = Path(root)
    try:
        text = Path(proc_cgroup).read_text()
    except OSError:
        return CgroupLimits(None, None)
    memory = _ints(_cgroup_files(root, text, "", "memory.max"))
    memory += _ints(_cgroup_files(root, text, "memory", "memory.limit_in_bytes"))
    quotas = []
    for value in _cgroup_files(root, text, "", "cpu.max"):
        quota, _, period = value.partition(" ")
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            quotas.append(int(quota) / int(period))
    v1_quota = _ints(_cgroup_files(root, text, "cpu", "cpu.cfs_quota_us"))
    v1_period = _ints(_cgroup_files(root, text, "cpu", "cpu.cfs_period_us"))
    quotas += [q / p for q, p in zip(v1_quota, v1_period, strict=False) if q > 0 and p > 0]
    return CgroupLimits(
        min((m for m in memory if 0 < m < NO_LIMIT), default=None),
        round(min(quotas), 2) if quotas else None,
    )


def physical_memory_bytes() -> int | None:
    """Installed memory as the kernel reports it, None where ``sysconf`` cannot say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def memory_gib(physical: int | None, limit: int | None) -> int | None:
    """Memory this process may use, in whole GiB: the cgroup's limit when it is below the machine's."""
    usable = min((m for m in (physical, limit) if m), default=None)
    return None if usable is None else round(usable / 2**30)


def gpu_info() -> tuple[list[dict[str, Any]], str | None]:
    """GPU names, memory, compute capability and driver via NVML; no ``pynvml`` or no GPU ->
    ``([], None)``."""
    try:
        import pynvml
    except ImportError:
        return [], None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver / no device
        return [], None
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpu: dict[str, Any] = {
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_total_mb": round(memory.total / 2**20),
            }
            with contextlib.suppress(Exception):  # drivers older than CUDA 5 cannot say
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                gpu["compute_capability"] = f"{major}.{minor}"
            gpus.append(gpu)
        return gpus, driver.decode() if isinstance(driver, bytes) else str(driver)
    except Exception:
        return [], None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def hash_model_dir(path: Path | str) -> str:
    """What the model at ``path`` computes (``models.identity``): the same seeded model exported
    again has the same hash; a changed weight, graph or signature changes it."""
    return model_identity(path)


def collect_fingerprint(
    *,
    backend: str,
    server: str,
    server_build: str | None = None,
    models: Mapping[str, str] | None = None,
    server_flags: Sequence[str] = (),
    gpus: Iterable[Mapping[str, Any]] | None = None,
    gpu_driver: str | None = None,
    speed_probe: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``server``: the backend's description; ``server_build``: the software that served, as
    exactly as known (image id, binary or TF version; default ``server``); ``models``: name/variant
    -> hash (see ``hash_model_dir``).

    ``gpus``/``gpu_driver`` default to what NVML reports on this machine, ``speed_probe`` to this
    process's probe (run once per process, 5 s or more: see ``speed_probe.machine_speed``).
    """
    if gpus is None:
        found, driver = gpu_info()
        gpus, gpu_driver = found, gpu_driver or driver
    cpu = cpu_id()
    limits = cgroup_limits()
    return {
        "backend": backend,
        "server": server,
        "server_build": server if server_build is None else server_build,
        "cpu_model": cpu_model(),
        "cpu_vendor": cpu.vendor,
        "cpu_signature": cpu.signature,
        "cpu_flags": list(cpu.flags),
        "logical_cores": logical_cores(),
        "cpu_quota": limits.cpu_quota,
        "memory_gib": memory_gib(physical_memory_bytes(), limits.memory_bytes),
        "gpus": [dict(g) for g in gpus],
        "gpu_driver": gpu_driver,
        "models": dict(sorted((models or {}).items())),
        "server_flags": list(server_flags),
        "python": platform.python_version() + f" ({sys.implementation.name})",
        "platform": f"{platform.system()} {platform.machine()}",
        "speed_probe": dict(machine_speed() if speed_probe is None else speed_probe),
    }


# -- comparability ---------------------------------------------------------------------------------

def _gpu_text(gpu: Mapping[str, Any]) -> str:
    """"NVIDIA H200 (140 GiB, cc 9.0)": the name, with memory and compute capability where known."""
    details = []
    if isinstance(gpu.get("memory_total_mb"), (int, float)):
        details.append(f"{round(gpu['memory_total_mb'] / 1024)} GiB")
    if gpu.get("compute_capability"):
        details.append(f"cc {gpu['compute_capability']}")
    name = str(gpu.get("name", "?"))
    return f"{name} ({', '.join(details)})" if details else name


def _gpus_text(gpus: Any) -> str:
    return ",".join(_gpu_text(g) for g in gpus or () if isinstance(g, Mapping)) or "none"


def _driver_major(driver: Any) -> str:
    return str(driver).split(".")[0] if driver else "unknown"


def is_legacy(fp: Mapping[str, Any]) -> bool:
    """Recorded before the hardware key held the CPU's features and the server build."""
    return any(field not in fp for field in KEY_FIELDS)


def key_parts(fp: Mapping[str, Any]) -> dict[str, str]:
    """The hardware key's parts by label, in a fixed order (for a legacy fingerprint, the old key's)."""
    cores = str(fp.get("logical_cores", "?"))
    quota = fp.get("cpu_quota")
    if isinstance(quota, (int, float)) and isinstance(fp.get("logical_cores"), int) \
            and quota < fp["logical_cores"]:
        cores += f" (quota {quota:g})"
    if is_legacy(fp):
        gpus = ",".join(str(g.get("name", "?")) for g in fp.get("gpus") or ()) or "none"
        return {"cpu": str(fp.get("cpu_model", "?")), "cores": cores, "gpus": gpus}
    parts = {
        "cpu": f"{fp['cpu_vendor']} {fp['cpu_signature']} ({fp.get('cpu_model', '?')})",
        "cpu flags": ",".join(f for f in fp["cpu_flags"] or () if f in KERNEL_FLAGS) or "none",
        "cores": cores,
        "memory": f"{fp['memory_gib']} GiB",
        "gpus": _gpus_text(fp.get("gpus")),
    }
    if fp.get("gpus"):
        parts["gpu driver"] = _driver_major(fp.get("gpu_driver"))
    parts["backend"] = str(fp.get("backend", "?"))
    parts["server build"] = str(fp["server_build"])
    return parts


def hardware_key(fp: Mapping[str, Any]) -> str:
    """What changes timings, as one string: equal keys mean timings are comparable.

    A fingerprint recorded before the key held the CPU's features and the server build gets the old
    key with a note, so it never equals a new one.
    """
    key = "; ".join(f"{label}={value}" for label, value in key_parts(fp).items())
    return f"{key} ({LEGACY_NOTE.split(';')[0]})" if is_legacy(fp) else key


def incomparable_reason(baseline_fp: Mapping[str, Any], current_fp: Mapping[str, Any]) -> str:
    """What differs in the hardware key, baseline first, and how to get a verdict; "" when equal.

    --ab-baseline is offered only when the server is the same: it serves the baseline's models
    beside this run's on this machine, with this session's one backend and server build.
    """
    if hardware_key(baseline_fp) == hardware_key(current_fp):
        return ""
    legacy = [side for side, fp in (("the baseline", baseline_fp), ("this run", current_fp))
              if is_legacy(fp)]
    if legacy:
        who = " and ".join(legacy) + (" were" if len(legacy) > 1 else " was")
        return f"{who} {LEGACY_NOTE} {RECORD_HOW}, {AB_FIX}; {WARN_NOTE}"
    old, new = key_parts(baseline_fp), key_parts(current_fp)
    labels = [*old, *(label for label in new if label not in old)]
    differing = [label for label in labels if old.get(label) != new.get(label)]
    diffs = "; ".join(f"{label}: {old.get(label, 'none')} -> {new.get(label, 'none')}"
                      for label in differing)
    if any(label in SERVER_PARTS for label in differing):
        return f"{diffs} - {RECORD_FIX}; {NO_AB_FIX}; {WARN_NOTE}"
    return f"{diffs} - {RECORD_FIX}, {AB_FIX}; {WARN_NOTE}"


def speed_mismatch_reason(baseline_fp: Mapping[str, Any], current_fp: Mapping[str, Any], limit: float) -> str:
    """Why a baseline with this hardware key is still not comparable: this runner did the speed
    probe's work more than ``limit`` times faster or slower than the recording one (a contended or
    throttled host); "" when within it or either side has no probe.

    Measured on this 2-core VM (docs/GATE.md): the probe at 2x slower than the morning's recording,
    the unchanged fp32 ResNet50 at +52-65 % p50, beyond any drift a run history shows.
    """
    ratio = speed_ratio(baseline_fp, current_fp)
    if ratio is None or max(ratio, 1 / ratio) <= limit:
        return ""
    return (f"{speed_comparison(baseline_fp, current_fp)}, beyond --perf-speed-mismatch {limit:g}x: the "
            f"same hardware at another speed - {RECORD_FIX} as it runs now, {AB_FIX} at the same time; "
            f"{WARN_NOTE}")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def compare_fingerprints(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Human-readable differences, baseline (``a``) first; empty when nothing differs.

    The speed probe is left out: it always differs a little (``speed_probe.speed_note`` shows it).
    """
    diffs: list[str] = []
    keys = [k for k in FINGERPRINT_KEYS if k in a or k in b]
    keys += sorted((set(a) | set(b)) - set(FINGERPRINT_KEYS) - NOT_COMPARED)
    for key in keys:
        old, new = a.get(key), b.get(key)
        if old == new:
            continue
        if key == "models" and isinstance(old, Mapping) and isinstance(new, Mapping):
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    diffs.append(f"model {name}: {old.get(name, 'absent')} -> {new.get(name, 'absent')}")
        elif key == "gpus":
            diffs.append(f"gpus: {_gpus_text(old)} -> {_gpus_text(new)}")
        elif key == "cpu_flags" and isinstance(old, list) and isinstance(new, list):
            diffs.append(f"cpu_flags: {','.join(old) or 'none'} -> {','.join(new) or 'none'}")
        elif key == "server_flags" and isinstance(old, list) and isinstance(new, list):
            removed = [f for f in old if f not in new]
            added = [f for f in new if f not in old]
            diffs.append(f"server_flags: removed {removed}, added {added}" if removed or added
                         else "server_flags: same flags, different order")
        else:
            diffs.append(f"{key}: {_short(old)} -> {_short(new)}")
    return diffs


def spec_flags(spec: ServerSpec) -> list[str]:
    """The server settings that enter the fingerprint: every ServerSpec field that is set, in field
    order, except those ``serving.fields`` keeps out (models are hashed under ``models``)."""
    flags = []
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if not spec_field(item.name).unfingerprinted and fingerprinted(value):
            flags.append(f"{item.name}={value!r}")
    return flags
