"""How much GPU memory each server may take when several GPU servers of one session run at once.

TensorFlow claims most of a GPU's free memory when a session starts, so a second server started on
the same GPU (B beside A under --ab-baseline) finds almost none. ``gpu_memory_fraction_for`` sizes
``--per_process_gpu_memory_fraction`` from the number of GPU servers running at once: the one place
to feed a larger count (e.g. several replicas per side). A fraction the user set on the ServerSpec
always wins; a server alone on its GPU gets none (TensorFlow's default).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path

from pytest_tfserving.serving.spec import ServerSpec

GPU_MEMORY_HEADROOM = 0.1
"""Share of the GPU left to what the fraction does not cover: each process's CUDA context and
cuDNN/cuBLAS workspaces, and the allocator's rounding."""

NVIDIA_CONTROL_DEVICE = Path("/dev/nvidiactl")


def gpu_memory_fraction_for(concurrent_gpu_servers: int) -> float | None:
    """Each server's ``--per_process_gpu_memory_fraction`` when ``concurrent_gpu_servers`` share one
    GPU: an equal part of (1 - headroom), rounded down to 0.01 (2 -> 0.45, 3 -> 0.3, 4 -> 0.22);
    None for one server alone (TensorFlow's default)."""
    if isinstance(concurrent_gpu_servers, bool) or not isinstance(concurrent_gpu_servers, int):
        raise TypeError(f"concurrent_gpu_servers must be an int, got {concurrent_gpu_servers!r}")
    if concurrent_gpu_servers < 1:
        raise ValueError(
            f"concurrent_gpu_servers={concurrent_gpu_servers}: "
            "count the GPU servers running at once (1 or more)"
        )
    if concurrent_gpu_servers == 1:
        return None
    share = math.floor((1.0 - GPU_MEMORY_HEADROOM) / concurrent_gpu_servers * 100 + 1e-9) / 100
    if share <= 0:
        raise ValueError(
            f"{concurrent_gpu_servers} GPU servers at once leave each less than 1 % of the GPU's "
            "memory; run fewer at once or set ServerSpec.gpu_memory_fraction yourself"
        )
    return share


def with_gpu_share(spec: ServerSpec, concurrent_gpu_servers: int) -> ServerSpec:
    """``spec`` as it is launched beside ``concurrent_gpu_servers - 1`` other GPU servers: its own
    ``gpu_memory_fraction`` when set (the user's value wins), else the sized share, else unchanged."""
    if spec.gpu_memory_fraction is not None:
        return spec
    share = gpu_memory_fraction_for(concurrent_gpu_servers)
    if share is None:
        return spec
    return dataclasses.replace(spec, gpu_memory_fraction=share)


def session_gpu_servers(
    *, on_gpu: bool, ab_baseline: bool, update_baselines: bool, replicas: int = 1
) -> int:
    """GPU servers one measurement runs at once: ``2 x replicas`` when the backend serves on a GPU and
    --ab-baseline serves the baseline's deployment beside the current one, ``replicas``
    (--ab-replicas) processes of each (never while recording baselines), else 1."""
    if replicas < 1:
        raise ValueError(f"replicas={replicas!r} must be >= 1")
    return 2 * replicas if on_gpu and ab_baseline and not update_baselines else 1


def local_gpu_visible(
    environ: Mapping[str, str] | None = None, control_device: Path = NVIDIA_CONTROL_DEVICE
) -> bool:
    """Whether a server started on this host (binary, embedded) can see an NVIDIA GPU: the driver's
    control device exists and CUDA_VISIBLE_DEVICES does not hide every device."""
    env = os.environ if environ is None else environ
    if env.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return control_device.exists()
