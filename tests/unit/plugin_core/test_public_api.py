"""The public API: every exported name resolves, and the embedded server's process stays lean."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_tfserving


@pytest.mark.parametrize("name", pytest_tfserving.__all__)
def test_every_public_name_resolves_to_its_own_definition(name: str) -> None:
    value = getattr(pytest_tfserving, name)
    module, _, attribute = pytest_tfserving._EXPORTS[name].partition(":")
    assert value.__module__ == module
    assert value.__name__ == (attribute or name)
    assert name in dir(pytest_tfserving)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pytest_tfserving.Nope  # type: ignore[attr-defined]


def test_submodules_still_import_through_the_package() -> None:
    from pytest_tfserving import hookspec

    assert hookspec.__name__ == "pytest_tfserving.hookspec"


def test_importing_the_package_loads_neither_the_gate_nor_the_load_generator() -> None:
    code = (
        "import sys, pytest_tfserving; "
        "print(sorted(m for m in sys.modules if m.startswith('pytest_tfserving.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_all_lists_exactly_the_exports() -> None:
    assert pytest_tfserving.__all__ == sorted(pytest_tfserving._EXPORTS)
