"""Version directory names and policies as TF Serving 2.19.1's FileSystemStoragePathSource reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tfserving.embedded.versions import (
    aspired_children,
    aspired_versions,
    index_by_version,
    parse_version,
)
from pytest_tfserving.serving.spec import VersionPolicy


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("123", 123),
        ("00000123", 123),  # TF Serving's own test data
        ("0", 0),
        ("+7", 7),  # absl::SimpleAtoi takes a sign
        (" 12 ", 12),  # and surrounding whitespace
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),  # past int64
        ("1.5", None),
        ("v1", None),
        ("12a", None),
        ("", None),
        ("+", None),
        ("٣", None),  # a non-ASCII digit is no version
    ],
)
def test_parse_version_like_simple_atoi(name: str, version: int | None) -> None:
    assert parse_version(name) == version


def test_duplicate_numbers_last_name_in_sorted_order_wins() -> None:
    assert index_by_version(["123", "00000123", "assets", "7"]) == {7: "7", 123: "123"}
    assert index_by_version(["0123", "00123"]) == {123: "0123"}


CHILDREN = ["00000001", "2", "0003", "notes.txt", "tmp-4"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (VersionPolicy(), {3: "0003"}),
        (VersionPolicy("latest", num_versions=2), {2: "2", 3: "0003"}),
        (VersionPolicy("latest", num_versions=9), {1: "00000001", 2: "2", 3: "0003"}),
        (VersionPolicy("all"), {1: "00000001", 2: "2", 3: "0003"}),
        (VersionPolicy("specific", versions=(1, 3)), {1: "00000001", 3: "0003"}),
        (VersionPolicy("specific", versions=(2,)), {2: "2"}),
        (VersionPolicy("specific", versions=(5,)), {}),
    ],
)
def test_policies_pick_versions_and_keep_directory_names(
    policy: VersionPolicy, expected: dict[int, str]
) -> None:
    assert aspired_children(policy, CHILDREN) == expected


def test_aspired_versions_point_at_the_padded_directory(tmp_path: Path) -> None:
    for name in ("00000123", "00000124", "other"):
        (tmp_path / name).mkdir()
    assert aspired_versions(VersionPolicy(), tmp_path, "m") == {124: tmp_path / "00000124"}
    assert aspired_versions(VersionPolicy("all"), tmp_path, "m") == {
        123: tmp_path / "00000123",
        124: tmp_path / "00000124",
    }
    assert aspired_versions(VersionPolicy(), tmp_path / "missing", "m") == {}
