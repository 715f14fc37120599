"""Import a Python file that is not in a package (a benchmark script, generated protobuf code)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_module(path: Path, module_name: str) -> ModuleType:
    """``path`` imported as ``module_name`` (registered in sys.modules, so dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_benchmark(stem: str) -> ModuleType:
    """``benchmarks/<stem>.py`` under a name of its own, for testing the script's functions."""
    return load_module(BENCHMARKS / f"{stem}.py", f"{stem}_under_test")
