"""Model builds show their steps in pytest's terminal (#19), past output capture; a reused build and
``-q`` stay quiet."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import FAST_ARGS

CONFTEST = """
import pytest
from pytest_tfserving.models.tiny import build_tiny_cnn

@pytest.fixture(scope="session")
def variants(tfserving_models):
    model = build_tiny_cnn()
    return [tfserving_models.build(model, name="tiny", variant=v) for v in ("fp32", "int8")]
"""
TEST = """
def test_built(variants):
    assert [m.variant for m in variants] == ["fp32", "int8"]
"""


def test_a_build_shows_its_steps_and_a_reuse_says_nothing(pytester: pytest.Pytester) -> None:
    # A cache of its own: the build must really happen in the first session.
    pytester.makeini(f"[pytest]\ntfserving_model_cache = {pytester.path / 'cache'}\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_build=TEST)

    built = pytester.runpytest_subprocess(*FAST_ARGS)
    built.assert_outcomes(passed=1)
    built.stdout.fnmatch_lines([
        "*tfserving_models tiny@fp32 ?* s? exporting the keras model as a SavedModel",
        "*tfserving_models tiny@fp32 ?* s? built fp32 in * s: */cache/tiny-fp32-*",
        "*tfserving_models tiny@int8 ?* s? exporting the keras model as a SavedModel",
        "*tfserving_models tiny@int8 ?* s? converting to TFLite int8, calibrating on 64 samples",
        "*tfserving_models tiny@int8 ?* s? built int8 in * s: */cache/tiny-int8-*",
    ])

    reused = pytester.runpytest_subprocess(*FAST_ARGS)
    reused.assert_outcomes(passed=1)
    assert "tfserving_models" not in reused.stdout.str()

    (pytester.path / "cache").rename(pytester.path / "old-cache")
    quiet = pytester.runpytest_subprocess(*FAST_ARGS, "-q")
    quiet.assert_outcomes(passed=1)
    assert "tfserving_models" not in quiet.stdout.str()
    assert (pytester.path / "cache").is_dir()  # it did build, silently
