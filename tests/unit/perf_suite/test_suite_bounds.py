"""The ResNet50 suite's in-run bounds (perf_suites/bounds.py and the shipped ceilings.toml) by CPU
class and cores; no server. Here under tests/ so that CI runs them (``make test``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf_suites.bounds import BOUND_KEYS, FIXED_BOUNDS, QUANTIZED_P50, cpu_class, default_bounds
from pytest_tfserving.gate.fingerprint import parse_cpuinfo

AVX2 = ("avx", "avx2", "fma", "f16c")
VNNI = (*AVX2, "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx512_vnni")


def test_the_cpu_class_reads_int8_dot_products_from_cpuinfo() -> None:
    zen4 = parse_cpuinfo("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nflags\t: avx2 avx512f avx512_vnni\n")
    zen2 = parse_cpuinfo("vendor_id\t: AuthenticAMD\ncpu family\t: 23\nflags\t: fpu avx avx2 fma\n")
    alder_lake = parse_cpuinfo("vendor_id\t: GenuineIntel\ncpu family\t: 6\nflags\t: avx2 avx_vnni\n")
    assert cpu_class(zen4.flags) == cpu_class(alder_lake.flags) == "int8 dot products"
    assert cpu_class(zen2.flags) == "no int8 dot products"


def test_without_int8_dot_products_one_request_is_a_near_tie_on_two_cores() -> None:
    bounds = default_bounds(AVX2, cores=2)
    assert set(bounds) == set(BOUND_KEYS)
    assert bounds["int8_p50"] == bounds["int8-dynamic_p50"] == bounds["fp16_p50"] == 1.35  # 1.148x quiet
    assert default_bounds(AVX2, cores=1) == bounds  # fewer cores only help the one-core variant


def test_with_int8_dot_products_int8_must_be_clearly_faster() -> None:
    bounds = default_bounds(VNNI, cores=2)
    assert bounds["int8_p50"] == 0.6  # 0.35x measured; serving fp32 as int8 (1.0x) fails
    assert bounds["int8-dynamic_p50"] == bounds["fp16_p50"] == 1.35  # not measured on VNNI


@pytest.mark.parametrize("flags", [AVX2, VNNI])
def test_latency_bounds_grow_with_the_cores_fp32_spreads_over(flags: tuple[str, ...]) -> None:
    two, eight = default_bounds(flags, cores=2), default_bounds(flags, cores=8)
    for key in ("int8_p50", "int8-dynamic_p50", "fp16_p50"):
        assert eight[key] == pytest.approx(4 * two[key])


@pytest.mark.parametrize("cores", [1, 2, 16])
def test_throughput_and_other_bounds_do_not_depend_on_the_machine(cores: int) -> None:
    for flags in (AVX2, VNNI):
        bounds = default_bounds(flags, cores)
        assert {key: bounds[key] for key in FIXED_BOUNDS} == dict(FIXED_BOUNDS)


def test_the_shipped_cpu_profile_leaves_the_quantized_bounds_to_the_cpu_class() -> None:
    """A [cpu.ratios] value replaces bounds.py's for every CPU: the shipped file held 1.1 for all
    three, so a VNNI runner never checked int8 <= 0.6x and an AVX2 one failed its 1.148x tie."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (as perf_suites/conftest.py)")
    shipped = tomllib.loads((Path(__file__).parents[3] / "perf_suites" / "ceilings.toml").read_text())
    assert not set(QUANTIZED_P50) & set(shipped["cpu"]["ratios"])
