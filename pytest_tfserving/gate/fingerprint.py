"""Where a measurement was taken: hardware, server and models, so baselines compare like with like.

``hardware_key`` decides comparability (a verdict across different CPUs/GPUs is meaningless);
the rest of the fingerprint is shown as differences to explain a surprising result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_tfserving.models.hashing import hash_directory
from pytest_tfserving.serving.fields import fingerprinted, spec_field
from pytest_tfserving.serving.spec import ServerSpec

FINGERPRINT_KEYS: tuple[str, ...] = (
    "backend", "server", "cpu_model", "logical_cores", "gpus", "gpu_driver", "models", "server_flags",
    "python", "platform",
)


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


def gpu_info() -> tuple[list[dict[str, Any]], str | None]:
    """GPU names, memory and driver via NVML; no ``pynvml`` or no GPU -> ``([], None)``."""
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
            gpus.append({
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_total_mb": round(memory.total / 2**20),
            })
        return gpus, driver.decode() if isinstance(driver, bytes) else str(driver)
    except Exception:
        return [], None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def hash_model_dir(path: Path | str) -> str:
    """A content hash of a model version directory (or file): any changed weight or graph changes it."""
    root = Path(path)
    if not (root.is_file() or any(p.is_file() for p in root.rglob("*"))):
        raise FileNotFoundError(f"no model files under {root}")
    return "sha256:" + hash_directory(root)[:16]


def collect_fingerprint(
    *,
    backend: str,
    server: str,
    models: Mapping[str, str] | None = None,
    server_flags: Sequence[str] = (),
    gpus: Iterable[Mapping[str, Any]] | None = None,
    gpu_driver: str | None = None,
) -> dict[str, Any]:
    """``server``: ``image:tag`` or TF version; ``models``: name/variant -> hash (see ``hash_model_dir``).

    ``gpus``/``gpu_driver`` default to what NVML reports on this machine.
    """
    if gpus is None:
        found, driver = gpu_info()
        gpus, gpu_driver = found, gpu_driver or driver
    return {
        "backend": backend,
        "server": server,
        "cpu_model": cpu_model(),
        "logical_cores": logical_cores(),
        "gpus": [dict(g) for g in gpus],
        "gpu_driver": gpu_driver,
        "models": dict(sorted((models or {}).items())),
        "server_flags": list(server_flags),
        "python": platform.python_version() + f" ({sys.implementation.name})",
        "platform": f"{platform.system()} {platform.machine()}",
    }


def hardware_key(fp: Mapping[str, Any]) -> str:
    """CPU model, logical cores and GPU names: equal keys mean timings are comparable."""
    gpus = ",".join(str(g.get("name", "?")) for g in fp.get("gpus") or ()) or "none"
    return f"cpu={fp.get('cpu_model', '?')}; cores={fp.get('logical_cores', '?')}; gpus={gpus}"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def compare_fingerprints(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Human-readable differences, baseline (``a``) first; empty when nothing differs."""
    diffs: list[str] = []
    keys = [k for k in FINGERPRINT_KEYS if k in a or k in b]
    keys += sorted((set(a) | set(b)) - set(FINGERPRINT_KEYS))
    for key in keys:
        old, new = a.get(key), b.get(key)
        if old == new:
            continue
        if key == "models" and isinstance(old, Mapping) and isinstance(new, Mapping):
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    diffs.append(f"model {name}: {old.get(name, 'absent')} -> {new.get(name, 'absent')}")
        elif key == "gpus":
            diffs.append(f"gpus: {hardware_key({'gpus': old}).split('gpus=')[1]} -> "
                         f"{hardware_key({'gpus': new}).split('gpus=')[1]}")
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
