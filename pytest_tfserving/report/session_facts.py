"""What a JSON report says about the session that wrote it, so shards' reports can be merged safely.

``python -m pytest_tfserving.report merge`` refuses to merge reports whose sessions would not have
judged alike: other hardware (the hardware key of their measurements: baselines are keyed per runner
class by it) or other gate settings. It also needs each session's exit status (a non-perf test can
fail a shard) and which pytest-split shard it was. No pytest imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_tfserving.gate.fingerprint import hardware_key
from pytest_tfserving.gate.gate_settings import SESSION_SETTINGS
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.shard_split import Shard

# Every setting that changes a verdict or what fails: shards of one suite must agree on all of them.
MERGED_SETTINGS: tuple[str, ...] = (
    *SESSION_SETTINGS,
    "perf_warmup",
    "baseline_ref",
    "ab_baseline",
    "update_baselines",
    "allow_gate_changes",
)


def gate_settings_record(settings: Any) -> dict[str, Any]:
    """The session's ``MERGED_SETTINGS`` (``options.Settings``), by ini name."""
    return {name: getattr(settings, name) for name in MERGED_SETTINGS if hasattr(settings, name)}


def hardware_keys(records: Iterable[TestRecord]) -> list[str]:
    """The distinct hardware keys the session's measurements were taken with (normally one)."""
    return sorted({hardware_key(r.fingerprint) for r in records if r.fingerprint})


def session_facts(
    settings: Any,
    *,
    exitstatus: int | None,
    shard: Shard | None,
    alpha_tests: int,
    records: Iterable[TestRecord],
) -> dict[str, Any]:
    """The report's ``session`` object. ``alpha_tests``: the perf tests --perf-alpha was shared by
    (a shard's: the whole suite's, so equal in every shard of one suite)."""
    return {
        "exitstatus": None if exitstatus is None else int(exitstatus),
        "shard": None if shard is None else shard.to_dict(),
        "alpha_tests": alpha_tests,
        "hardware_keys": hardware_keys(records),
        "gate_settings": gate_settings_record(settings),
    }
