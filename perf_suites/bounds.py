"""The suite's in-run bounds (ratios of interleaved A/B windows), by CPU class and core count.

Why the quantized latency bounds depend on the machine: TF Serving runs every TFLite interpreter on
one thread (``tflite_interpreter_pool.cc``: "Use a single thread to reduce contention across
sessions"), and ``--num_tflite_pools`` only adds interpreters for concurrent requests. With one
request in flight a TFLite variant therefore gets one core, while the fp32 SavedModel's intra-op
pool spreads the same request over every core. Whether the variant wins then depends on how much
cheaper its kernels are per core than fp32's, against how much fp32 gains from the other cores:

- CPUs with int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX): int8 p50 measured 0.35x
  fp32 through this suite on 2 cores, so ``int8`` must be clearly faster (<= 0.6x). int8-dynamic and
  fp16 were not measured there and keep the general bound.
- Otherwise (AVX2 without VNNI, and Arm, not measured): int8 and fp32 kernels cost about the same per
  image, so one core of int8 against two of fp32 is a near tie. Measured on 2 AVX2 cores: int8
  0.71x..0.91x, int8-dynamic 0.64x..1.06x, 1.47x under heavy contention; with TF Serving's pool
  semantics (issue #16) 1.15x in one run and 0.998x (99.7 % bounds 0.79x..1.26x) in another, both
  while other jobs loaded the machine; on a quiet machine int8 measured 1.148x (99.96 % one-sided
  bounds 1.022x..1.290x) and int8-dynamic 1.083x..1.105x. That is the threading, not a fault: one
  interpreter thread against fp32's two makes the variant up to 2x slower when its per-core kernels
  are no cheaper, and at most as fast as fp32 when they are. The claim there is "not slower by more
  than ``GENERAL_P50``" (1.35x, above every quiet measurement's upper bound), which catches a broken
  variant (reference kernels, a float fallback: several times slower), not a small difference.
- More cores: fp32's request speeds up with them and the TFLite request does not, so the measured
  2-core bounds are scaled by ``cores / 2`` (fp32 gains at most that much over 2 cores).

Throughput with every core busy (``int8_rps``) compares like with like on any machine: the suite
gives TFLite one interpreter per core and keeps 2 x cores requests in flight, so both sides use all
cores. That is the claim that separates int8 from fp32 everywhere; it stays fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
"""/proc/cpuinfo flags of x86 int8 dot-product instructions, which TFLite's int8 kernels use."""
MEASURED_CORES = 2
"""Cores of the machines the latency bounds were measured on."""
GENERAL_P50 = 1.35
"""Max variant p50 / fp32 p50 at one request, on MEASURED_CORES cores without int8 dot products."""
INT8_DOT_P50 = 0.6
"""Max int8 p50 / fp32 p50 at one request, on MEASURED_CORES cores with int8 dot products."""

FIXED_BOUNDS: Mapping[str, float] = {
    "int8_rps": 1.15,  # min: int8 / fp32 req/s, every core busy
    "threads_rps": 0.85,  # min: tuned / default req/s
    "batching_rps": 0.5,  # min: batching on / off req/s
    "cache_hit_to_miss": 0.5,  # max: mean hit latency / mean miss latency
}
QUANTIZED_P50 = ("int8_p50", "int8-dynamic_p50", "fp16_p50")  # max: variant p50 / fp32 p50, one request
BOUND_KEYS = (*QUANTIZED_P50, *FIXED_BOUNDS)


def cpu_class(flags: Iterable[str]) -> str:
    """"int8 dot products" when the CPU has VNNI or AMX-INT8, else "no int8 dot products"."""
    return "int8 dot products" if INT8_DOT_FLAGS & set(flags) else "no int8 dot products"


def default_bounds(flags: Iterable[str], cores: int) -> dict[str, float]:
    """Every in-run bound for a CPU with these /proc/cpuinfo ``flags`` and ``cores`` logical cores."""
    scale = max(1.0, cores / MEASURED_CORES)
    bounds = dict.fromkeys(QUANTIZED_P50, GENERAL_P50)
    if cpu_class(flags) == "int8 dot products":
        bounds["int8_p50"] = INT8_DOT_P50
    return {**{key: round(value * scale, 3) for key, value in bounds.items()}, **FIXED_BOUNDS}
