"""One sampler for the load runner: CPU/memory from a process or container sampler, plus GPUs."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from pytest_tfserving.metrics.resources import GpuSample, ResourceSample, ResourceSampler


class GpuSampler(Protocol):
    def sample(self) -> tuple[GpuSample, ...]: ...

    def close(self) -> None: ...


class CompositeSampler:
    """ResourceSampler whose samples carry the GPU readings taken at the same moment."""

    def __init__(self, base: ResourceSampler, gpu: GpuSampler | None = None) -> None:
        self.base = base
        self.gpu = gpu

    def sample(self) -> ResourceSample:
        """CPU% since the previous call (the first call primes and may report 0), with GPU tuples."""
        sample = self.base.sample()
        if self.gpu is None:
            return sample
        return dataclasses.replace(sample, gpus=self.gpu.sample())

    def close(self) -> None:
        """Close both samplers, the GPU one even when the base one fails."""
        try:
            self.base.close()
        finally:
            if self.gpu is not None:
                self.gpu.close()
