"""The gate settings a measurement is judged with, as a JSON-able record, and which changes loosen them.

A baseline records the settings it was judged with, so that under ``--baseline-ref`` the ref's
settings stand: a working tree that gates less (a higher tolerance, fewer gated metrics, a higher or
removed ceiling, a looser session setting) is named and fails unless ``--allow-gate-changes``.
Pure functions and frozen dataclasses; no pytest imports.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_tfserving.gate.ceilings import CEILING_KEYS, PerfChecks

Scalar = float | int | str
Looser = Literal["higher", "lower"]

# The session settings (CLI > ini) that decide how much a verdict can let through, and which way is
# looser. Each one makes a real change more likely to end as "pass" or "inconclusive" (which passes
# unless --perf-inconclusive=fail):
# - perf_alpha lower: a regression needs stronger evidence, so more of them stay inconclusive (a
#   higher alpha only adds false alarms, which hurt the PR itself);
# - perf_run_drift higher: the prediction interval of the run history widens;
# - perf_min_windows, perf_max_windows, perf_window lower: less evidence per verdict; with fewer
#   windows at the first look a real regression's point estimate falls inside the tolerance by
#   chance more often (and passes there), with fewer in all it ends inconclusive more often;
# - ab_replicas lower: under --ab-baseline fewer server processes per side average the offset
#   between two processes of one deployment less, so the judge allows for a larger one and a real
#   change ends inconclusive more often;
# - perf_speed_mismatch higher: a baseline recorded while the runner ran at another speed is judged
#   instead of failing as incomparable, and that speed change reads as the PR's.
NUMERIC_SETTINGS: Mapping[str, Looser] = {
    "perf_alpha": "lower",
    "perf_run_drift": "higher",
    "perf_min_windows": "lower",
    "perf_max_windows": "lower",
    "perf_window": "lower",
    "ab_replicas": "lower",
    "perf_speed_mismatch": "higher",
}
# Choices, strictest first.
CHOICE_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "perf_hardware_mismatch": ("fail", "warn"),
    "perf_inconclusive": ("fail", "warn"),
}
# Recorded for the reader but not compared on their own: perf_tolerance is the default of every
# test's tolerances, and those (per gated metric) are compared, so a raised default is named once
# per measurement it loosens and not at all for a test that sets its own tolerance.
RECORDED_ONLY: tuple[str, ...] = ("perf_tolerance",)
SESSION_SETTINGS: tuple[str, ...] = (*NUMERIC_SETTINGS, *CHOICE_SETTINGS, *RECORDED_ONLY)
# The window settings one measurement actually ran with, by perf.measure's argument names: the test
# body's values (``perf.measure(min_windows=3, window_s=0.1)``), else the session's. Fewer or shorter
# windows are looser, for the reasons above, wherever they are set; ``rounds`` is
# ``perf.single_request``'s (fewer timed requests per window).
WINDOW_SETTINGS: Mapping[str, Looser] = {
    "min_windows": "lower",
    "max_windows": "lower",
    "window_s": "lower",
    "rounds": "lower",
}
# The session setting each defaults to: when both sides recorded the effective value, it is compared
# instead (an ini change that a test overrides does not loosen that test; one it does not override is
# named once, as its effective value).
WINDOW_DEFAULTS: Mapping[str, str] = {
    "min_windows": "perf_min_windows",
    "max_windows": "perf_max_windows",
    "window_s": "perf_window",
}


@dataclass(frozen=True)
class GateSettings:
    """What one measurement is gated by: its test's ``perf`` marker (gated metrics, their tolerances,
    ceilings by marker key) and the session settings that bear on a verdict."""

    metrics: tuple[str, ...]
    tolerances: Mapping[str, float] = field(default_factory=dict)  # per gated metric
    ceilings: Mapping[str, float] = field(default_factory=dict)  # marker key -> limit
    settings: Mapping[str, Scalar] = field(default_factory=dict)  # SESSION_SETTINGS by ini name
    # WINDOW_SETTINGS as this measurement ran; empty: not known (perf.record, an older plugin).
    windows: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "tolerances": dict(sorted(self.tolerances.items())),
            "ceilings": dict(sorted(self.ceilings.items())),
            "settings": dict(sorted(self.settings.items())),
            **({"windows": dict(sorted(self.windows.items()))} if self.windows else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateSettings:
        """Read a recorded record; unknown keys (from a newer plugin) are ignored."""
        return cls(
            metrics=tuple(str(m) for m in data.get("metrics") or ()),
            tolerances={str(k): float(v) for k, v in dict(data.get("tolerances") or {}).items()},
            ceilings={str(k): float(v) for k, v in dict(data.get("ceilings") or {}).items()},
            settings={str(k): _scalar(v) for k, v in dict(data.get("settings") or {}).items()},
            windows={str(k): float(v) for k, v in dict(data.get("windows") or {}).items()},
        )


def _scalar(value: Any) -> Scalar:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    raise TypeError(f"gate setting value {value!r} is not a number or a string")


def gate_settings_of(
    checks: PerfChecks, settings: Any, windows: Mapping[str, float] | None = None
) -> GateSettings:
    """The record for a test's parsed marker under this session's ``Settings``; ``windows``: the
    WINDOW_SETTINGS one measurement ran with (``perf.handle.Recorded.windows``)."""
    session = {name: getattr(settings, name) for name in SESSION_SETTINGS if hasattr(settings, name)}
    return GateSettings(
        metrics=tuple(checks.gate),
        tolerances={metric: checks.tolerance_for(metric) for metric in checks.gate},
        ceilings={c.key: c.limit for c in checks.ceilings},
        settings=session,
        windows={name: float(value) for name, value in (windows or {}).items() if name in WINDOW_SETTINGS},
    )


@dataclass(frozen=True)
class GateChange:
    """One difference between the ref's gate settings and the working tree's."""

    what: str  # e.g. "tolerance p50_ms", "gated metric rps", "ceiling p99_ms", "perf_alpha"
    old: str
    new: str
    looser: bool  # False: tighter (informational)

    def line(self) -> str:
        return f"{self.what}: {self.old} -> {self.new} ({'looser' if self.looser else 'tighter'})"


def _fmt(value: Scalar | None) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _compare_number(what: str, old: float, new: float, looser_when: Looser) -> GateChange | None:
    if _same(old, new):
        return None
    higher = new > old
    return GateChange(what, _fmt(old), _fmt(new), higher == (looser_when == "higher"))


def _ceiling_changes(old: Mapping[str, float], new: Mapping[str, float]) -> list[GateChange]:
    changes: list[GateChange] = []
    for key in sorted(set(old) | set(new)):
        what = f"ceiling {key}"
        if key not in new:
            changes.append(GateChange(what, _fmt(old[key]), "removed", looser=True))
        elif key not in old:
            changes.append(GateChange(what, "none", _fmt(new[key]), looser=False))
        else:
            # A max bound loosens upwards, a min bound (min_rps, ...) downwards; an unknown key (a
            # newer plugin's) loosens either way, so nothing passes unnoticed.
            bound = CEILING_KEYS[key][1] if key in CEILING_KEYS else None
            change = _compare_number(what, old[key], new[key], "lower" if bound == "min" else "higher")
            if change is not None and bound is None:
                change = GateChange(change.what, change.old, change.new, looser=True)
            if change is not None:
                changes.append(change)
    return changes


def _setting_changes(
    old: Mapping[str, Scalar], new: Mapping[str, Scalar], skip: Collection[str] = ()
) -> list[GateChange]:
    """Settings recorded on both sides (one recorded by an older plugin is not compared), but those
    in ``skip``."""
    changes: list[GateChange] = []
    for name, looser_when in NUMERIC_SETTINGS.items():
        if name in skip:
            continue
        a, b = old.get(name), new.get(name)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            change = _compare_number(name, float(a), float(b), looser_when)
            if change is not None:
                changes.append(GateChange(name, _fmt(a), _fmt(b), change.looser))
    for name, strictest_first in CHOICE_SETTINGS.items():
        a, b = old.get(name), new.get(name)
        if a is None or b is None or a == b:
            continue
        rank = {choice: i for i, choice in enumerate(strictest_first)}
        # A value this plugin does not know counts as the loosest.
        looser = rank.get(str(b), len(rank)) > rank.get(str(a), len(rank))
        changes.append(GateChange(name, str(a), str(b), looser))
    return changes


def compare_gates(ref: GateSettings, now: GateSettings) -> tuple[GateChange, ...]:
    """Every way ``now`` gates differently from ``ref``: loosenings and tightenings, in a stable order
    (gated metrics, tolerances, ceilings, session settings, the windows as measured)."""
    changes = [
        *(GateChange(f"gated metric {m}", "gated", "not gated", looser=True)
          for m in ref.metrics if m not in now.metrics),
        *(GateChange(f"gated metric {m}", "not gated", "gated", looser=False)
          for m in now.metrics if m not in ref.metrics),
    ]
    for metric in (m for m in ref.metrics if m in now.metrics):
        old, new = ref.tolerances.get(metric), now.tolerances.get(metric)
        if old is not None and new is not None:
            change = _compare_number(f"tolerance {metric}", old, new, "higher")
            if change is not None:
                changes.append(change)
    changes += _ceiling_changes(ref.ceilings, now.ceilings)
    both = [name for name in WINDOW_SETTINGS if name in ref.windows and name in now.windows]
    changes += _setting_changes(ref.settings, now.settings,
                                skip={WINDOW_DEFAULTS[name] for name in both if name in WINDOW_DEFAULTS})
    for name in both:
        change = _compare_number(f"{name} (as measured)", ref.windows[name], now.windows[name],
                                 WINDOW_SETTINGS[name])
        if change is not None:
            changes.append(change)
    return tuple(changes)
