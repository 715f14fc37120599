"""pytest-tfserving: gate pull requests on performance regressions of TensorFlow Serving deployments.

The plugin itself loads through the ``pytest11`` entry point. This module is the public API: what
conftest files, perf suites and benchmarks import. Everything else is internal and may move.

Names are imported on first use (PEP 562), so ``python -m pytest_tfserving.embedded`` (the embedded
server's own process) does not pay for the load generator and the gate when it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tfserving.backends.base import RunningServer
    from pytest_tfserving.fixtures import ModelVariants, ServerFactory, plugin_settings
    from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
    from pytest_tfserving.load.config import LoadConfig
    from pytest_tfserving.load.payloads import PayloadOptions
    from pytest_tfserving.load.results import Measurement, WindowSummary
    from pytest_tfserving.load.runner import measure as measure_load
    from pytest_tfserving.load.summary import StabilityRule
    from pytest_tfserving.options import Settings
    from pytest_tfserving.perf.handle import PerfHandle
    from pytest_tfserving.report.records import TestRecord
    from pytest_tfserving.services.redis_service import RedisService
    from pytest_tfserving.serving.spec import BatchingSpec, ModelSpec, ServerSpec, SpecError, VersionPolicy

# public name -> the module that defines it (``module:attribute`` where the names differ)
_EXPORTS: dict[str, str] = {
    "BatchingSpec": "pytest_tfserving.serving.spec",
    "ModelSpec": "pytest_tfserving.serving.spec",
    "ServerSpec": "pytest_tfserving.serving.spec",
    "SpecError": "pytest_tfserving.serving.spec",
    "VersionPolicy": "pytest_tfserving.serving.spec",
    "PayloadOptions": "pytest_tfserving.load.payloads",
    "Measurement": "pytest_tfserving.load.results",
    "WindowSummary": "pytest_tfserving.load.results",
    "StabilityRule": "pytest_tfserving.load.summary",
    "LoadConfig": "pytest_tfserving.load.config",
    "measure_load": "pytest_tfserving.load.runner:measure",
    "PerfHandle": "pytest_tfserving.perf.handle",
    "MetricVerdict": "pytest_tfserving.gate.verdicts",
    "RelativeVerdict": "pytest_tfserving.gate.verdicts",
    "TestRecord": "pytest_tfserving.report.records",
    "Settings": "pytest_tfserving.options",
    "ModelVariants": "pytest_tfserving.fixtures",
    "ServerFactory": "pytest_tfserving.fixtures",
    "plugin_settings": "pytest_tfserving.fixtures",
    "RunningServer": "pytest_tfserving.backends.base",
    "RedisService": "pytest_tfserving.services.redis_service",
}

__all__ = [
    "BatchingSpec",
    "LoadConfig",
    "Measurement",
    "MetricVerdict",
    "ModelSpec",
    "ModelVariants",
    "PayloadOptions",
    "PerfHandle",
    "RedisService",
    "RelativeVerdict",
    "RunningServer",
    "ServerFactory",
    "ServerSpec",
    "Settings",
    "SpecError",
    "StabilityRule",
    "TestRecord",
    "VersionPolicy",
    "WindowSummary",
    "measure_load",
    "plugin_settings",
]


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'pytest_tfserving' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
