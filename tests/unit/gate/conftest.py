"""Fixtures for the gate tests; the builders live in gate_factories.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.gate.gate_factories import FINGERPRINT, MakeMeasurement, build_measurement


@pytest.fixture
def make_measurement() -> MakeMeasurement:
    return build_measurement


@pytest.fixture
def fingerprint() -> dict[str, Any]:
    return dict(FINGERPRINT)
