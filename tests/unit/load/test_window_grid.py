"""Windows on a grid: back to back when the loop is on time, moved whole when it opens one late."""

from __future__ import annotations

import gc

import pytest

from pytest_tfserving.load.heap import frozen_heap
from pytest_tfserving.load.loops import WindowGrid


def test_on_time_and_slightly_late_windows_keep_the_grid() -> None:
    grid = WindowGrid(origin=10.0, length=1.0)
    assert grid.end_of(0, 10.0) == (11.0, 0.0)
    end, late = grid.end_of(1, 11.3)  # 0.7 s of the window left: shortened, not moved
    assert end == 12.0 and late == pytest.approx(0.3)
    assert grid.end_of(2, 12.0) == (13.0, 0.0)


def test_a_window_opened_past_half_its_length_is_moved_whole() -> None:
    grid = WindowGrid(origin=10.0, length=1.0)
    end, late = grid.end_of(0, 11.6)  # stalled through warm-up's end and most of window 0
    assert end == pytest.approx(12.6) and late == pytest.approx(1.6)
    assert grid.end_of(1, end) == (pytest.approx(13.6), 0.0)  # later windows follow the moved grid


def test_frozen_heap_freezes_once_and_always_unfreezes() -> None:
    before = gc.get_freeze_count()
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > before
        with frozen_heap():  # nested: stays frozen
            assert gc.get_freeze_count() >= frozen
        assert gc.get_freeze_count() >= frozen
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("a failed run")
    assert gc.get_freeze_count() == 0
