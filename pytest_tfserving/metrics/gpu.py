"""GPU utilisation and memory from NVML (``pynvml``, the ``gpu`` extra), or a reason why not.

GPU figures are optional in a perf run: a machine without a GPU, a driver or the extra is normal, so
callers get a sentence explaining the absence (for the report) instead of an exception.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pytest_tfserving.metrics.errors import SamplingError
from pytest_tfserving.metrics.resources import GpuSample

MIB = 1024.0 * 1024.0
INSTALL_HINT = "pip install 'pytest-tfserving[gpu]' (installs nvidia-ml-py, which provides pynvml)"


class GpuUnavailable(RuntimeError):
    """No GPU figures can be had here; ``str(exc)`` is the reason, fit for a report line."""


def _load_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:
        raise GpuUnavailable(f"GPU metrics need the NVML bindings: {INSTALL_HINT}") from exc
    return pynvml


def _init_reason(nvml: ModuleType, err: Exception) -> str:
    value = getattr(err, "value", None)
    reasons = {
        nvml.NVML_ERROR_LIBRARY_NOT_FOUND: (
            "no NVIDIA driver: libnvidia-ml.so.1 was not found (install the NVIDIA driver; in a container "
            "run with --gpus all and the NVIDIA Container Toolkit)"
        ),
        nvml.NVML_ERROR_DRIVER_NOT_LOADED: (
            "the NVIDIA kernel driver is not loaded (`nvidia-smi` must work before GPU metrics can)"
        ),
        nvml.NVML_ERROR_NO_PERMISSION: "no permission to open the NVIDIA devices (check /dev/nvidia* access)",
        nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
            "NVIDIA driver and NVML library versions differ (reboot or reload the driver after an upgrade)"
        ),
    }
    return reasons.get(value, f"NVML failed to initialise: {err}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlGpuSampler:
    """Samples utilisation (%, over NVML's last sample period) and memory of the selected GPUs.

    ``indices`` restricts sampling to those NVML device indices (e.g. the GPU the server was given).
    Raises ``GpuUnavailable`` when NVML cannot be used, ``ValueError`` for an index that does not exist.
    """

    def __init__(self, indices: Sequence[int] | None = None) -> None:
        nvml = _load_pynvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise GpuUnavailable(_init_reason(nvml, exc)) from exc
        self._nvml: ModuleType | None = nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if count == 0:
                raise GpuUnavailable("the NVIDIA driver is loaded but reports no GPU on this machine")
            self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
            all_names = {i: _text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)))
                         for i in range(count)}
            wanted = list(range(count)) if indices is None else list(indices)
            missing = [i for i in wanted if i not in all_names]
            if missing:
                present = ", ".join(f"{i} ({name})" for i, name in all_names.items())
                raise ValueError(f"GPU index {missing} does not exist; this machine has: {present}")
            self._devices = [(i, all_names[i], nvml.nvmlDeviceGetHandleByIndex(i)) for i in wanted]
        except nvml.NVMLError as exc:
            self.close()
            raise GpuUnavailable(f"NVML could not list the GPUs: {exc}") from exc
        except (GpuUnavailable, ValueError):
            self.close()
            raise

    @property
    def devices(self) -> tuple[tuple[int, str], ...]:
        """(index, name) of each sampled GPU."""
        return tuple((i, name) for i, name, _ in self._devices)

    def sample(self) -> tuple[GpuSample, ...]:
        """One GpuSample per selected device; utilisation is NaN where NVML has none (MIG slices)."""
        nvml = self._nvml
        if nvml is None:
            raise SamplingError("GPU sampler used after close()")
        samples = []
        for index, name, handle in self._devices:
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                try:
                    util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                except nvml.NVMLError as exc:
                    if getattr(exc, "value", None) != nvml.NVML_ERROR_NOT_SUPPORTED:
                        raise
                    util = math.nan
            except nvml.NVMLError as exc:
                raise SamplingError(f"reading GPU {index} ({name}) failed: {exc}") from exc
            samples.append(GpuSample(index=index, name=name, util_percent=util,
                                     memory_used_mb=memory.used / MIB, memory_total_mb=memory.total / MIB))
        return tuple(samples)

    def close(self) -> None:
        """Release NVML (reference counted by the library, so other users are unaffected)."""
        nvml, self._nvml = self._nvml, None
        if nvml is not None:
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()


def gpu_sampler_or_reason(indices: Sequence[int] | None = None) -> tuple[NvmlGpuSampler | None, str | None]:
    """``(sampler, None)`` when GPUs can be sampled, else ``(None, reason)``; bad indices still raise."""
    try:
        return NvmlGpuSampler(indices), None
    except GpuUnavailable as exc:
        return None, str(exc)


def gpu_unavailable_reason() -> str | None:
    """Why GPU metrics are unavailable here, or None when they are available (probes and releases NVML)."""
    sampler, reason = gpu_sampler_or_reason()
    if sampler is not None:
        sampler.close()
    return reason


__all__ = ["GpuUnavailable", "NvmlGpuSampler", "gpu_sampler_or_reason", "gpu_unavailable_reason"]
