"""GPU sampling through the real NVML library: a reading where a GPU exists, a clear reason elsewhere."""

from __future__ import annotations

import math
import sys

import pytest

from pytest_tfserving.metrics.gpu import (
    GpuUnavailable,
    NvmlGpuSampler,
    gpu_sampler_or_reason,
    gpu_unavailable_reason,
)

REASON = gpu_unavailable_reason()


@pytest.mark.skipif(REASON is None, reason="a GPU is present: the no-GPU reason cannot be observed")
def test_no_gpu_gives_a_reason_that_says_what_is_missing() -> None:
    sampler, reason = gpu_sampler_or_reason()
    assert sampler is None
    assert reason == REASON
    assert reason is not None
    assert any(hint in reason for hint in ("NVIDIA driver", "pip install", "no GPU", "NVML"))
    with pytest.raises(GpuUnavailable, match=r"NVIDIA|NVML"):
        NvmlGpuSampler()


def test_missing_bindings_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what Python does when the package is absent
    sampler, reason = gpu_sampler_or_reason()
    assert sampler is None
    assert reason is not None and "pip install 'pytest-tfserving[gpu]'" in reason


@pytest.mark.skipif(REASON is not None, reason=f"no GPU here: {REASON}")
def test_real_gpu_sample() -> None:
    sampler, reason = gpu_sampler_or_reason()
    assert sampler is not None and reason is None
    try:
        samples = sampler.sample()
        assert [s.index for s in samples] == [i for i, _ in sampler.devices]
        for s in samples:
            assert s.name
            assert s.memory_total_mb > 0 and 0 <= s.memory_used_mb <= s.memory_total_mb
            assert math.isnan(s.util_percent) or 0 <= s.util_percent <= 100
        with pytest.raises(ValueError, match="does not exist; this machine has: 0"):
            NvmlGpuSampler(indices=[len(samples) + 7])
        only_first = NvmlGpuSampler(indices=[0])
        assert [s.index for s in only_first.sample()] == [0]
        only_first.close()
    finally:
        sampler.close()
