"""A session that is one shard of a suite split by pytest-split (``--splits N --group k``).

pytest-split deselects the other shards' tests through ``pytest_deselected``. Two things must still
see the whole suite, or a sharded gate would differ from an unsharded one:

- ``--perf-alpha`` is shared by the perf tests of the whole suite, not of the shard, so each shard
  judges every test at the level an unsharded run would (and the PR's false-alarm bound holds over
  all shards together);
- the gate-changes check (``--baseline-ref``) does not count the other shards' tests as "baselined
  but not measured": they are listed as left to other shards, and ``python -m
  pytest_tfserving.report merge`` checks that some shard measured each of them.

The hook below records the suite as pytest-split receives it. It sits in a module the plugin
registers when it loads (``pytest_plugins`` in ``plugin.py``), before pytest-split registers its
splitting plugin in ``pytest_configure``; pluggy calls ``trylast`` implementations in registration
order, so this one runs after ``-m``/``-k`` deselection and just before pytest-split's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SPLIT_TOOL = "pytest-split"


@dataclass(frozen=True)
class Shard:
    """Which part of the suite this session runs: ``group`` of ``splits`` (1-based, as pytest-split)."""

    group: int
    splits: int
    # How the suite was split: shards that split it differently run a test twice or not at all.
    algorithm: str | None = None  # --splitting-algorithm
    durations: str | None = None  # sha256 of the --durations-path file read; None: there was none

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "splits": self.splits, "tool": SPLIT_TOOL,
                "algorithm": self.algorithm, "durations_sha256": self.durations}

    def label(self) -> str:
        return f"shard {self.group}/{self.splits}"


def shard_of(config: pytest.Config) -> Shard | None:
    """This session's shard, from pytest-split's options; None when it is not split (or pytest-split
    is not installed: its options do not exist then)."""
    splits = getattr(config.option, "splits", None)
    group = getattr(config.option, "group", None)
    if not splits or not group:
        return None
    durations = durations_digest(getattr(config.option, "durations_path", None))
    return Shard(int(group), int(splits), getattr(config.option, "splitting_algorithm", None), durations)


def durations_digest(path: str | None) -> str | None:
    """The sha256 of the durations file pytest-split reads; None when there is none."""
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class ShardSuite:
    """The suite this shard is part of: every test selected before pytest-split chose the shard's."""

    shard: Shard
    suite: tuple[str, ...]  # node ids, in collection order
    perf_tests: int  # perf tests among them: what --perf-alpha is shared by, in every shard alike

    def elsewhere(self, selected: Iterable[str]) -> tuple[str, ...]:
        """The suite's tests that this shard does not run: the other shards run them."""
        chosen = set(selected)
        return tuple(nodeid for nodeid in self.suite if nodeid not in chosen)


SHARD_SUITE_KEY = pytest.StashKey[ShardSuite]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = shard_of(config)
    if shard is None:
        return
    from pytest_tfserving.session import is_perf_test  # session.py imports this module

    config.stash[SHARD_SUITE_KEY] = ShardSuite(
        shard, tuple(item.nodeid for item in items), sum(map(is_perf_test, items))
    )
