"""pytest-tfserving: gate pull requests on performance regressions of TensorFlow Serving deployments.

The plugin itself loads through the ``pytest11`` entry point; this module re-exports what tests and
conftest files use.
"""

from __future__ import annotations

from pytest_tfserving.load.payloads import PayloadOptions
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.serving.spec import (
    BatchingSpec,
    ModelSpec,
    ServerSpec,
    SpecError,
    VersionPolicy,
)

__all__ = [
    "BatchingSpec",
    "Measurement",
    "ModelSpec",
    "PayloadOptions",
    "ServerSpec",
    "SpecError",
    "VersionPolicy",
    "WindowSummary",
]
