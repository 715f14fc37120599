"""CompositeSampler puts GPU readings into the process sampler's samples and closes both."""

from __future__ import annotations

import os

from pytest_tfserving.metrics.composite import CompositeSampler
from pytest_tfserving.metrics.process import ProcessSampler
from pytest_tfserving.metrics.resources import GpuSample


class _FixedGpu:
    """Stands in for NVML (no GPU on this machine); records calls so the composition is checked."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def sample(self) -> tuple[GpuSample, ...]:
        self.calls += 1
        return (GpuSample(index=0, name="Tesla V100", util_percent=float(self.calls),
                          memory_used_mb=1024.0, memory_total_mb=16384.0),)

    def close(self) -> None:
        self.closed = True


def test_gpu_readings_ride_on_each_sample() -> None:
    gpu = _FixedGpu()
    sampler = CompositeSampler(ProcessSampler(os.getpid()), gpu)
    first, second = sampler.sample(), sampler.sample()
    assert [s.gpus[0].util_percent for s in (first, second)] == [1.0, 2.0]
    assert second.rss_mb > 1.0 and second.timestamp >= first.timestamp
    sampler.close()
    assert gpu.closed


def test_without_gpu_samples_have_no_gpus() -> None:
    sampler = CompositeSampler(ProcessSampler(os.getpid()), None)
    assert sampler.sample().gpus == ()
    sampler.close()
