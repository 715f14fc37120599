"""Test ids in the terminal table: whole, or shortened only where no other id could be meant.

The bug this guards: ids were cut from the left, so ``test_grpc_closed_loop`` and
``test_rest_closed_loop`` both read ``…closed_loop``.
"""

from __future__ import annotations

import itertools

import pytest

from pytest_tfserving.report.terminal import (
    ELLIPSIS,
    WRAP_INDENT,
    could_stand_for,
    display_ids,
    format_table,
    split_measurement_id,
    wrap_id,
)
from tests.unit.report.report_factories import judged, metric

GRPC = "tests/perf/test_serving_protocols.py::test_grpc_closed_loop[fp32-c1]"
REST = "tests/perf/test_serving_protocols.py::test_rest_closed_loop[fp32-c1]"
DEEP = "tests/perf/suites/resnet/latency/test_resnet50.py::test_closed_loop[grpc-fp32-c4]"
# Differ only in one directory: shortening the directories must keep the one that tells them apart.
LEFT = "tests/a/deep/nested/dir/test_x.py::test_y[p1]"
RIGHT = "tests/b/deep/nested/dir/test_x.py::test_y[p1]"


def joined(lines: tuple[str, ...]) -> str:
    """The printed lines of one id read back as one string (a wrapped id's indent removed)."""
    return lines[0] + "".join(line.removeprefix(WRAP_INDENT) for line in lines[1:])


def test_split_measurement_id() -> None:
    assert split_measurement_id("d/t.py::test[a@b]@fp32") == ("d/t.py::test[a@b]", "fp32")
    assert split_measurement_id("a@b/t.py::test") == ("a@b/t.py::test", "")
    assert split_measurement_id("t.py::TestX::test[x]") == ("t.py::TestX::test[x]", "")
    assert split_measurement_id("t.py::test@int8 (fast)") == ("t.py::test", "int8 (fast)")


def test_could_stand_for() -> None:
    assert could_stand_for(f"tests/{ELLIPSIS}/test_x.py::t", "tests/a/b/test_x.py::t")
    assert not could_stand_for(f"tests/{ELLIPSIS}/test_x.py::t", "tests/a/b/test_z.py::t")
    assert not could_stand_for("abc", "abcd")
    assert could_stand_for("abc", "abc")


@pytest.mark.parametrize("width", range(24, 90, 3))
@pytest.mark.parametrize("ids", [(GRPC, REST), (LEFT, RIGHT), (GRPC, REST, DEEP, LEFT, RIGHT)])
def test_ids_are_never_ambiguous_at_any_width(ids: tuple[str, ...], width: int) -> None:
    shown = display_ids(ids, width)
    for test_id in ids:
        lines = shown[test_id]
        text = joined(lines)
        assert could_stand_for(text, test_id), (test_id, lines)  # a faithful form of its own id ...
        others = [o for o in ids if o != test_id]
        assert not any(could_stand_for(text, o) for o in others), (test_id, lines)  # ... and of no other
        assert all(len(line) <= max(width, len(WRAP_INDENT) + 10) for line in lines), lines


def test_ids_sharing_a_suffix_are_told_apart_in_a_narrow_table() -> None:
    records = [judged(GRPC + "@fp32", metric("pass")), judged(REST + "@fp32", metric("pass"))]
    for width in (40, 60, 80):
        lines = format_table(records, width=width)
        text = "\n".join(lines)
        assert "test_grpc_closed_loop" in text and "test_rest_closed_loop" in text, text
        assert not any(line.startswith(ELLIPSIS + "closed_loop") for line in lines)


def test_an_id_that_fits_is_shown_whole() -> None:
    assert display_ids([GRPC, REST], len(GRPC)) == {GRPC: (GRPC,), REST: (REST,)}


def test_shortening_elides_directories_and_keeps_file_test_and_parameter_id() -> None:
    [short] = display_ids([DEEP], 60)[DEEP]
    assert len(short) <= 60 and ELLIPSIS in short
    assert short.endswith("/test_resnet50.py::test_closed_loop[grpc-fp32-c4]")
    assert short.count(ELLIPSIS) == 1 and short != "…/test_resnet50.py::test_closed_loop[grpc-fp32-c4]"


def test_shortening_keeps_the_directory_that_tells_two_ids_apart() -> None:
    shown = display_ids([LEFT, RIGHT], 40)
    left, right = shown[LEFT], shown[RIGHT]
    assert len(left) == len(right) == 1, shown  # shortened, not wrapped
    assert "/a/" in left[0] or left[0].startswith("tests/a"), left
    assert "/b/" in right[0] or right[0].startswith("tests/b"), right
    alone = display_ids([LEFT], 40)[LEFT]  # with no rival id, the directory may go
    assert "/a/" not in alone[0]


def test_an_id_too_long_to_shorten_is_wrapped_whole() -> None:
    long_name = "t.py::test_" + "very_long_name_" * 6 + "[param-id-that-matters]"
    lines = display_ids([long_name], 40)[long_name]
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert joined(lines) == long_name
    assert lines[-1].endswith("[param-id-that-matters]")


def test_wrap_breaks_after_separators_and_not_inside_double_colons() -> None:
    lines = wrap_id("tests/perf/test_protocols.py::test_grpc_closed_loop[fp32-c1]", 30)
    assert joined(lines) == "tests/perf/test_protocols.py::test_grpc_closed_loop[fp32-c1]"
    assert not any(line.endswith(":") and not line.endswith("::") for line in lines), lines
    assert lines == ("tests/perf/test_protocols.py::", WRAP_INDENT + "test_grpc_closed_loop",
                     WRAP_INDENT + "[fp32-c1]"), lines  # names kept whole, the parameter id apart
    for width in range(14, 40):
        lines = wrap_id("perf/test_protocols.py::TestClass::test_grpc[fp32]", width)
        pairs = itertools.pairwise(lines)
        assert not any(a.endswith(":") and b.lstrip().startswith(":") for a, b in pairs), (width, lines)
