"""Optional dependencies (pip extras) that a setting or a selected test needs, checked when the session
starts: a missing one is a usage error naming the install command, not a traceback after the
measuring. No pytest imports; ``plugin.py`` raises the messages as ``pytest.UsageError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_tfserving.gate.ceilings import PerfChecks
from pytest_tfserving.load.locust_extra import locust_problem
from pytest_tfserving.options import Settings


@dataclass(frozen=True)
class Extra:
    """``pip install 'pytest-tfserving[name]'`` provides ``module``."""

    name: str
    module: str

    def install_command(self) -> str:
        return f"pip install 'pytest-tfserving[{self.name}]'"


PLOTS = Extra("plots", "matplotlib")
GPU = Extra("gpu", "pynvml")


def import_problem(extra: Extra) -> str | None:
    """Why ``extra``'s module cannot be imported here, or None when it can."""
    try:
        importlib.import_module(extra.module)
    except ImportError as exc:
        return str(exc)
    return None


def missing(extra: Extra, needed_by: str) -> str | None:
    """The usage-error text when ``extra`` is not installed, else None."""
    problem = import_problem(extra)
    if problem is None:
        return None
    return (
        f"{needed_by} needs the {extra.name!r} extra, which is not installed ({problem}): "
        f"{extra.install_command()}"
    )


def missing_for_settings(settings: Settings) -> list[str]:
    """What the session's options need that is not installed."""
    needs: list[tuple[Extra, str]] = []
    if settings.perf_report_plots is not None:
        needs.append((PLOTS, "--perf-report-plots (ini perf_report_plots)"))
    found = [text for extra, by in needs if (text := missing(extra, by)) is not None]
    if settings.locust_master_host or settings.locust_expect_workers:
        # looked up, never imported here: importing Locust monkey-patches this process with gevent
        problem = locust_problem()
        if problem is not None:
            found.append(f"--locust-master-host / --locust-expect-workers: {problem}")
    return found


def uses_gpu_metrics(checks: PerfChecks) -> bool:
    """A ceiling or gated metric on GPU figures, which only NVML (the ``gpu`` extra) provides."""
    metrics = [ceiling.metric for ceiling in checks.ceilings] + list(checks.gate)
    return any(metric.startswith("gpu_") for metric in metrics)


def missing_for_tests(gpu_tests: Sequence[str]) -> list[str]:
    """What the selected tests need that is not installed; ``gpu_tests`` are the node ids of those
    with GPU ceilings or gated GPU metrics."""
    if not gpu_tests:
        return []
    more = f" (and {len(gpu_tests) - 1} more)" if len(gpu_tests) > 1 else ""
    text = missing(GPU, f"{gpu_tests[0]}{more}: a GPU ceiling or gated GPU metric")
    return [] if text is None else [text]
