"""WindowMerger: window k of every load process merged once all have sent it; laggards named."""

from __future__ import annotations

import pytest

from pytest_tfserving.load.loops import WindowRecord
from pytest_tfserving.load.window_merge import WindowMerger


def _record(index: int, latencies_ms: list[float], errors: int = 0) -> WindowRecord:
    record = WindowRecord(index=index, start_s=float(index), duration_s=1.0)
    for ms in latencies_ms:
        record.add(ms / 1000.0, True, "OK")
    for _ in range(errors):
        record.add(0.001, False, "UNAVAILABLE")
    record.sent = record.count
    return record


def test_window_k_is_merged_only_once_every_process_sent_it() -> None:
    merger = WindowMerger(["a", "b"])
    assert merger.add("a", _record(0, [1.0, 2.0])) is None
    assert merger.add("a", _record(1, [5.0])) is None  # b has not sent window 0 yet
    merged = merger.add("b", _record(0, [3.0], errors=2))
    assert merged is not None and merged.index == 0
    assert (merged.count, merged.errors, merged.sent) == (5, 2, 5)
    assert merged.histogram.count == 3 and merged.errors_by_status == {"UNAVAILABLE": 2}
    second = merger.add("b", _record(1, [6.0, 7.0]))
    assert second is not None and (second.index, second.count) == (1, 3)


def test_a_process_falling_behind_is_named() -> None:
    merger = WindowMerger(["a", "b", "c"])
    for k in range(3):
        merger.add("a", _record(k, [1.0]))
        merger.add("c", _record(k, [1.0]))
    merger.add("b", _record(0, [1.0]))
    assert merger.behind() == ["b"]
    assert merger.behind(windows=3) == []


def test_unknown_and_repeated_windows_are_errors() -> None:
    merger = WindowMerger([0, 1])
    with pytest.raises(ValueError, match="unknown load process 7"):
        merger.add(7, _record(0, [1.0]))
    merger.add(0, _record(0, [1.0]))
    with pytest.raises(ValueError, match="twice"):
        merger.add(0, _record(0, [1.0]))
    with pytest.raises(ValueError, match="at least one"):
        WindowMerger([])
