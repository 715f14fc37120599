"""pytest11 entry point: options, markers and hook wiring only (being built)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tfserving", "TensorFlow Serving performance gate")
    group.addoption("--tfserving-backend", default=None, help="server backend")
    parser.addini("tfserving_backend", "server backend", default="auto")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "perf(**ceilings): a performance test, selected with -m perf")
