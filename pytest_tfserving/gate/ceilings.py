"""The ``perf`` marker's keyword arguments as small check objects: absolute ceilings, tolerances, gate.

Parsing happens once, at collection, so a typo in a marker fails fast with the list of valid keys
instead of silently gating nothing. No pytest imports: the plugin turns ``CeilingError`` into a
collection error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_tfserving.load.results import HIGHER_IS_BETTER, LOWER_IS_BETTER, Measurement

Bound = Literal["max", "min"]

# marker key -> (Measurement metric, kind of bound)
CEILING_KEYS: Mapping[str, tuple[str, Bound]] = {
    "p50_ms": ("p50_ms", "max"),
    "p90_ms": ("p90_ms", "max"),
    "p95_ms": ("p95_ms", "max"),
    "p99_ms": ("p99_ms", "max"),
    "max_ms": ("max_ms", "max"),
    "mean_ms": ("mean_ms", "max"),
    "min_rps": ("rps", "min"),
    "max_error_rate": ("error_rate", "max"),
    "max_cpu_percent": ("cpu_percent", "max"),
    "max_rss_mb": ("rss_mb", "max"),
    "max_gpu_memory_mb": ("gpu_memory_mb", "max"),
    "max_gpu_util": ("gpu_util_percent", "max"),
    "min_cache_hit_ratio": ("cache_hit_ratio", "min"),
}
GATEABLE_METRICS: frozenset[str] = LOWER_IS_BETTER | HIGHER_IS_BETTER
DEFAULT_TOLERANCE = 0.10
# p50 and throughput are the steadiest per-window statistics; tails need many more windows to judge.
DEFAULT_GATE: tuple[str, ...] = ("p50_ms", "rps")
CONTROL_KEYS: frozenset[str] = frozenset({"tolerance", "tolerances", "gate"})


class CeilingError(ValueError):
    """A ``perf`` marker argument that is unknown or has a bad value; the message lists what is valid."""


@dataclass(frozen=True)
class Failure:
    """One ceiling that the measurement broke (or could not be checked because it was not measured)."""

    key: str
    metric: str
    bound: Bound
    limit: float
    actual: float | None

    def message(self) -> str:
        if self.actual is None:
            return (
                f"{self.key}={self.limit:g}: {self.metric} was not measured "
                f"(enable its sampler or remove the ceiling)"
            )
        relation = ">" if self.bound == "max" else "<"
        return f"{self.metric} {self.actual:.4g} {relation} {self.key}={self.limit:g}"


@dataclass(frozen=True)
class Ceiling:
    """An absolute limit on one metric of the whole run (not per window)."""

    key: str
    metric: str
    bound: Bound
    limit: float

    def check(self, m: Measurement) -> Failure | None:
        actual = m.metric(self.metric)
        if actual is None or math.isnan(actual):
            return Failure(self.key, self.metric, self.bound, self.limit, None)
        broken = actual > self.limit if self.bound == "max" else actual < self.limit
        return Failure(self.key, self.metric, self.bound, self.limit, actual) if broken else None


@dataclass(frozen=True)
class PerfChecks:
    """Everything a ``perf`` marker asks for. ``extra`` holds keys the caller allowed and handles itself."""

    ceilings: tuple[Ceiling, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    tolerances: Mapping[str, float] = field(default_factory=dict)
    gate: tuple[str, ...] = DEFAULT_GATE
    extra: Mapping[str, Any] = field(default_factory=dict)

    def tolerance_for(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerance)


def _valid_keys(allowed_extra: Iterable[str]) -> str:
    return ", ".join(sorted(set(CEILING_KEYS) | CONTROL_KEYS | set(allowed_extra)))


def _number(key: str, value: Any, *, positive: bool = False, at_most: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CeilingError(f"perf marker: {key}={value!r} must be a number")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        kind = "a positive" if positive else "a non-negative"
        raise CeilingError(f"perf marker: {key}={value!r} must be {kind} finite number")
    if at_most is not None and number > at_most:
        raise CeilingError(f"perf marker: {key}={value!r} must be at most {at_most:g}")
    return number


def _tolerance(key: str, value: Any) -> float:
    # A tolerance of 1.0 already allows a doubling; anything above is almost surely a percent typo.
    return _number(key, value, positive=True, at_most=1.0)


def _metric_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or name not in GATEABLE_METRICS:
        valid = ", ".join(sorted(GATEABLE_METRICS))
        raise CeilingError(f"perf marker: {where} names unknown metric {name!r}; valid metrics: {valid}")
    return name


def parse_perf_marker(
    kwargs: Mapping[str, Any],
    *,
    allowed_extra: Iterable[str] = (),
    default_tolerance: float = DEFAULT_TOLERANCE,
    default_gate: Sequence[str] = DEFAULT_GATE,
) -> PerfChecks:
    """Validate the marker's kwargs; ``allowed_extra`` names keys the caller consumes (e.g. ``duration``)."""
    allowed_extra = frozenset(allowed_extra)
    ceilings: list[Ceiling] = []
    extra: dict[str, Any] = {}
    tolerance = default_tolerance
    tolerances: dict[str, float] = {}
    gate = tuple(default_gate)
    for key, value in kwargs.items():
        if key in CEILING_KEYS:
            metric, bound = CEILING_KEYS[key]
            at_most = 1.0 if metric in ("error_rate", "cache_hit_ratio") else None
            ceilings.append(Ceiling(key, metric, bound, _number(key, value, at_most=at_most)))
        elif key == "tolerance":
            tolerance = _tolerance(key, value)
        elif key == "tolerances":
            if not isinstance(value, Mapping):
                raise CeilingError(f"perf marker: tolerances={value!r} must be a dict like {{'p99_ms': 0.2}}")
            for metric, tol in value.items():
                tolerances[_metric_name("tolerances", metric)] = _tolerance(f"tolerances[{metric!r}]", tol)
        elif key == "gate":
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise CeilingError(
                    f"perf marker: gate={value!r} must be a tuple of metric names, "
                    f"e.g. gate=('p50_ms', 'rps'), or () to gate nothing"
                )
            gate = tuple(dict.fromkeys(_metric_name("gate", name) for name in value))
        elif key in allowed_extra:
            extra[key] = value
        else:
            raise CeilingError(f"perf marker: unknown argument {key!r}; valid: {_valid_keys(allowed_extra)}")
    return PerfChecks(tuple(ceilings), tolerance, tolerances, gate, extra)


def check_ceilings(checks: PerfChecks | Sequence[Ceiling], m: Measurement) -> list[Failure]:
    """Every broken ceiling; a ceiling on a metric that was not measured is a failure, never a pass."""
    ceilings = checks.ceilings if isinstance(checks, PerfChecks) else checks
    return [failure for c in ceilings if (failure := c.check(m)) is not None]
