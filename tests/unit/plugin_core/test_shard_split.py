"""Which pytest-split shard a session is, and the suite it is part of (shard_split.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_tfserving.shard_split import Shard, ShardSuite, shard_of


def config(**option: Any) -> Any:
    return SimpleNamespace(option=SimpleNamespace(**option))


def test_a_session_without_splits_is_no_shard() -> None:
    assert shard_of(config()) is None  # pytest-split not installed: its options do not exist
    assert shard_of(config(splits=None, group=None)) is None


def test_the_shard_carries_how_the_suite_was_split(tmp_path: Path) -> None:
    durations = tmp_path / ".test_durations"
    durations.write_text('{"t.py::test_a": 1.5}')
    shard = shard_of(config(splits=3, group=2, splitting_algorithm="least_duration",
                            durations_path=str(durations)))
    digest = hashlib.sha256(durations.read_bytes()).hexdigest()
    assert shard == Shard(2, 3, "least_duration", digest)
    assert shard.to_dict() == {"group": 2, "splits": 3, "tool": "pytest-split",
                               "algorithm": "least_duration", "durations_sha256": digest}
    missing = shard_of(config(splits=3, group=1, durations_path=str(tmp_path / "absent")))
    assert missing is not None and missing.durations is None and missing.label() == "shard 1/3"


def test_the_other_shards_tests_are_the_suites_that_this_shard_does_not_run() -> None:
    suite = ShardSuite(Shard(1, 2), ("a.py::t1", "a.py::t2", "b.py::t3"), perf_tests=3)
    assert suite.elsewhere(["a.py::t2"]) == ("a.py::t1", "b.py::t3")
