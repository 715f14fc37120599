"""Every plugin setting: declared once, offered as CLI option and ini key, resolved into one frozen object.

Precedence is CLI > ini > default. CLI defaults are ``None`` so an ini value can win. Bad values raise
``pytest.UsageError`` naming the valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.judge import DEFAULT_RUN_DRIFT
from pytest_tfserving.gate.verdicts import DEFAULT_SPEED_MISMATCH

BACKENDS = ("auto", "docker", "binary", "embedded", "external")
REDIS_BACKENDS = ("auto", "local", "docker", "external")
PROTOCOLS = ("grpc", "rest")
MISMATCH_POLICIES = ("fail", "warn")
INCONCLUSIVE_POLICIES = ("warn", "fail")
DEFAULT_TFSERVING_IMAGE = "tensorflow/serving"
DEFAULT_TFSERVING_TAG = "2.19.1"


@dataclass(frozen=True)
class Option:
    """One setting: ``--cli-name`` and ini ``ini_name``, with a parser that raises ValueError."""

    cli: str
    ini: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    flag: bool = False  # a store_true CLI switch (ini value "true"/"false")


def _choice(valid: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in valid:
            raise ValueError(f"{value!r} is not one of {', '.join(valid)}")
        return value

    return parse


def _number(convert: Callable[[str], Any], ok: Callable[[Any], bool], needs: str) -> Callable[[str], Any]:
    """A parser for one kind of number; text that is no number at all fails like an out-of-range one."""

    def parse(value: str) -> Any:
        try:
            number = convert(value)
        except ValueError:
            number = math.nan
        if not ok(number):
            raise ValueError(f"{value!r} must be {needs}")
        return number

    return parse


_positive_float = _number(float, lambda x: math.isfinite(x) and x > 0, "a number > 0, e.g. 0.5")
_positive_int = _number(int, lambda x: x > 0, "a positive integer, e.g. 6")
_fraction = _number(float, lambda x: 0 <= x < 1, "a fraction in [0, 1), e.g. 0.1 for 10%")
MAX_AB_REPLICAS = 8  # 2 x 8 servers at once is already more than a runner of a few cores can share
DEFAULT_AB_REPLICAS = 3
_ab_replicas = _number(
    int, lambda x: 1 <= x <= MAX_AB_REPLICAS,
    f"a whole number from 1 (one process per side) to {MAX_AB_REPLICAS}, e.g. {DEFAULT_AB_REPLICAS}",
)


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _gpus(value: str) -> str | None:
    """``none`` | ``all`` | a count | device ids ``0,1`` (``device=0,1`` also accepted)."""
    text = value.strip()
    if text.lower() in ("", "none", "0"):
        return None
    if text.lower() == "all":
        return "all"
    ids = text.removeprefix("device=")
    parts = ids.split(",")
    if all(part.strip().isdigit() for part in parts):
        return text
    raise ValueError(f"{value!r}: use none, all, a count like 2, or device ids like device=0,1")


def _text(value: str) -> str | None:
    return value.strip() or None


def _host_port(value: str) -> str | None:
    """``HOST`` or ``HOST:PORT``."""
    text = value.strip()
    host, colon, port = text.rpartition(":")
    if colon and (not host or not port.isdigit()):
        raise ValueError(f"{value!r} is not HOST or HOST:PORT, e.g. 0.0.0.0:5557")
    return text or None


OPTIONS: tuple[Option, ...] = (
    Option(
        "--perf",
        "tfserving_perf",
        False,
        _bool,
        "run the perf tests even without `-m perf`; a plain `pytest` deselects them (default: false)",
        flag=True,
    ),
    Option(
        "--tfserving-backend",
        "tfserving_backend",
        "auto",
        _choice(BACKENDS),
        "server backend: auto picks docker if an engine answers, else tensorflow_model_server on PATH, "
        "else the embedded server (default: auto)",
    ),
    Option(
        "--tfserving-image",
        "tfserving_image",
        DEFAULT_TFSERVING_IMAGE,
        _text,
        f"image for the docker backend (default: {DEFAULT_TFSERVING_IMAGE})",
    ),
    Option(
        "--tfserving-tag",
        "tfserving_tag",
        DEFAULT_TFSERVING_TAG,
        _text,
        f"image tag for the docker backend; '-gpu' is appended when GPUs are requested "
        f"(default: {DEFAULT_TFSERVING_TAG})",
    ),
    Option(
        "--tfserving-gpus",
        "tfserving_gpus",
        None,
        _gpus,
        "GPUs for the docker backend: none, all, a count, or device=0,1 (default: none)",
    ),
    Option(
        "--tfserving-binary",
        "tfserving_binary",
        None,
        _text,
        "path of tensorflow_model_server for the binary backend (default: found on PATH)",
    ),
    Option(
        "--tfserving-target",
        "tfserving_target",
        None,
        _text,
        "gRPC host:port of an already running server (external backend)",
    ),
    Option(
        "--tfserving-rest-url",
        "tfserving_rest_url",
        None,
        _text,
        "REST base URL of an already running server (external backend)",
    ),
    Option(
        "--tfserving-startup-timeout",
        "tfserving_startup_timeout",
        180.0,
        _positive_float,
        "seconds to wait for a server to report its models AVAILABLE (default: 180)",
    ),
    Option(
        "--tfserving-model-cache",
        "tfserving_model_cache",
        ".tfserving-cache",
        _text,
        "directory where built model variants are cached across sessions (default: .tfserving-cache)",
    ),
    Option(
        "--tfserving-model-name",
        "tfserving_model_name",
        None,
        _text,
        "model served by the default tfserving_server fixture (or override the tfserving_spec fixture)",
    ),
    Option(
        "--tfserving-model-base-path",
        "tfserving_model_base_path",
        None,
        _text,
        "directory holding the model's numeric version directories, for the default server",
    ),
    Option(
        "--tfserving-model-variant",
        "tfserving_model_variant",
        "fp32",
        _choice(("fp32", "fp16", "int8-dynamic", "int8")),
        "variant of the default server's model; fp16/int8 variants are built from the SavedModel "
        "(default: fp32)",
    ),
    Option(
        "--redis-backend",
        "redis_backend",
        "auto",
        _choice(REDIS_BACKENDS),
        "Redis: auto (external if --redis-url, else local redis-server, else docker), local, docker, "
        "external (default: auto)",
    ),
    Option("--redis-url", "redis_url", None, _text, "URL of an already running Redis (external)"),
    Option(
        "--redis-image",
        "redis_image",
        "redis:7.4.2",
        _text,
        "image for the Redis container (default: redis:7.4.2)",
    ),
    Option(
        "--perf-warmup", "perf_warmup", 2.0, _positive_float, "seconds of load before measuring (default: 2)"
    ),
    Option(
        "--perf-window", "perf_window", 1.0, _positive_float, "seconds per measurement window (default: 1)"
    ),
    Option(
        "--perf-min-windows", "perf_min_windows", 6, _positive_int, "windows measured at least (default: 6)"
    ),
    Option(
        "--perf-max-windows",
        "perf_max_windows",
        20,
        _positive_int,
        "windows measured at most, including re-measuring an inconclusive verdict (default: 20)",
    ),
    Option(
        "--perf-tolerance",
        "perf_tolerance",
        0.10,
        _fraction,
        "relative change tolerated before a metric can regress (default: 0.10)",
    ),
    Option(
        "--perf-run-drift",
        "perf_run_drift",
        DEFAULT_RUN_DRIFT,
        _fraction,
        "run-to-run drift between sessions that the judge assumes at least when testing against a "
        "baseline's recorded runs (as a relative standard deviation; the drift itself is estimated "
        "from the runs of every baseline on this runner); raise it on runners whose speed drifts "
        "more between days, 0 trusts the recorded runs alone (default: 0.06)",
    ),
    Option(
        "--baselines-dir",
        "baselines_dir",
        "baselines",
        _text,
        "directory of the JSON baselines, relative to the rootdir (default: baselines)",
    ),
    Option(
        "--update-baselines",
        "update_baselines",
        False,
        _bool,
        "write or refresh the baselines of perf tests that completed and met their ceilings",
        flag=True,
    ),
    Option(
        "--baseline-history",
        "baseline_history",
        5,
        _positive_int,
        "runs kept per baseline: each --update-baselines session on the same deployment adds one, so "
        "the gate can test against run-to-run drift once 3 are recorded (default: 5)",
    ),
    Option(
        "--baseline-ref",
        "baseline_ref",
        None,
        _text,
        "read baselines from this git ref (e.g. origin/main) so a PR cannot loosen its own gate",
    ),
    Option(
        "--ab-baseline",
        "ab_baseline",
        False,
        _bool,
        "serve each baseline's own deployment (models from --deployment-store) beside the test's and "
        "judge the test against it in interleaved windows, immune to machine drift; falls back to the "
        "stored numbers, with a note saying why, when the deployment is unchanged or not in the store",
        flag=True,
    ),
    Option(
        "--ab-replicas",
        "ab_replicas",
        DEFAULT_AB_REPLICAS,
        _ab_replicas,
        "with --ab-baseline: server processes per side (the baseline's deployment and the test's); "
        "window pairs rotate over them, so the persistent offset between two processes averages out "
        f"by sqrt(N); 1 to {MAX_AB_REPLICAS}, 1 serves one of each; 2N servers run at once "
        f"(default: {DEFAULT_AB_REPLICAS})",
    ),
    Option(
        "--deployment-store",
        "deployment_store",
        ".tfserving-cache/deployments",
        _text,
        "where --update-baselines keeps a copy of each measured model by content hash, for "
        "--ab-baseline; keep it on the runner between jobs (default: .tfserving-cache/deployments)",
    ),
    Option(
        "--perf-hardware-mismatch",
        "perf_hardware_mismatch",
        "fail",
        _choice(MISMATCH_POLICIES),
        "when a baseline was recorded on other hardware or another server build: fail (record on this "
        "runner with `make baselines`, or judge with --ab-baseline) or warn (skip the comparison) "
        "(default: fail)",
    ),
    Option(
        "--perf-speed-mismatch",
        "perf_speed_mismatch",
        DEFAULT_SPEED_MISMATCH,
        _number(float, lambda x: x > 1, "a speed ratio above 1, e.g. 1.4"),
        "a stored baseline whose one-second speed probe ran this many times faster or slower than this "
        "runner's is not comparable (a contended or throttled host with the same hardware key) and is "
        "handled as --perf-hardware-mismatch says; raise it to judge across larger speed changes "
        f"(default: {DEFAULT_SPEED_MISMATCH})",
    ),
    Option(
        "--perf-alpha",
        "perf_alpha",
        0.01,
        _number(float, lambda x: 0 < x < 0.5, "a probability in (0, 0.5), e.g. 0.01"),
        "probability that an unchanged pull request gets at least one false regression, over all its "
        "perf tests, metrics and re-measurements together; see docs/GATE.md (default: 0.01)",
    ),
    Option(
        "--perf-inconclusive",
        "perf_inconclusive",
        "warn",
        _choice(INCONCLUSIVE_POLICIES),
        "a verdict that could not tell a change beyond the tolerance from noise: warn (shown as "
        "inconclusive, with the smallest change the run could detect) or fail (default: warn)",
    ),
    Option(
        "--allow-gate-changes",
        "allow_gate_changes",
        False,
        _bool,
        "under --baseline-ref, accept a working tree that loosens the gate (higher tolerance, fewer "
        "gated metrics, higher ceiling, looser settings, a baselined test that did not run); meant "
        "for a maintainer's run",
        flag=True,
    ),
    Option(
        "--perf-report-md",
        "perf_report_md",
        None,
        _text,
        "write a Markdown report here (also appended to $GITHUB_STEP_SUMMARY when set)",
    ),
    Option("--perf-report-json", "perf_report_json", None, _text, "write a JSON report here"),
    Option(
        "--perf-report-plots",
        "perf_report_plots",
        None,
        _text,
        "write PNG latency plots into this directory (needs pytest-tfserving[plots])",
    ),
    Option(
        "--locust-master-host",
        "locust_master_host",
        None,
        _host_port,
        "perf.measure(engine='locust'): the Locust master binds HOST[:PORT] (port default 5557) and "
        "starts no workers; workers on other hosts connect with `locust --worker -f` this package's "
        "pytest_tfserving/load/locust_user.py --master-host HOST (default: master and workers on 127.0.0.1)",
    ),
    Option(
        "--locust-expect-workers",
        "locust_expect_workers",
        None,
        _positive_int,
        "Locust workers the master waits for before measuring (default: the workers= of perf.measure)",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one pytest session."""

    tfserving_perf: bool
    tfserving_backend: str
    tfserving_image: str
    tfserving_tag: str
    tfserving_gpus: str | None
    tfserving_binary: str | None
    tfserving_target: str | None
    tfserving_rest_url: str | None
    tfserving_startup_timeout: float
    tfserving_model_cache: Path
    tfserving_model_name: str | None
    tfserving_model_base_path: str | None
    tfserving_model_variant: str
    redis_backend: str
    redis_url: str | None
    redis_image: str
    perf_warmup: float
    perf_window: float
    perf_min_windows: int
    perf_max_windows: int
    perf_tolerance: float
    perf_run_drift: float
    baselines_dir: Path
    update_baselines: bool
    baseline_history: int
    baseline_ref: str | None
    ab_baseline: bool
    ab_replicas: int
    deployment_store: Path
    perf_hardware_mismatch: str
    perf_speed_mismatch: float
    perf_alpha: float
    perf_inconclusive: str
    allow_gate_changes: bool
    perf_report_md: Path | None
    perf_report_json: Path | None
    perf_report_plots: Path | None
    locust_master_host: str | None
    locust_expect_workers: int | None


_PATH_SETTINGS = (
    "tfserving_model_cache",
    "baselines_dir",
    "deployment_store",
    "perf_report_md",
    "perf_report_json",
    "perf_report_plots",
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("tfserving", "TensorFlow Serving performance gate (pytest-tfserving)")
    for option in OPTIONS:
        action = "store_true" if option.flag else "store"
        group.addoption(option.cli, action=action, default=None, dest=option.ini, help=option.help)
        parser.addini(option.ini, option.help, default=None)


def resolve_settings(config: pytest.Config) -> Settings:
    """CLI > ini > default; a bad value is a UsageError naming the option and the valid values."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = config.getoption(option.ini)
        source = option.cli
        if raw is None:
            raw = config.getini(option.ini)
            source = f"ini {option.ini}"
        if raw is None or raw == "" or raw == []:
            value = option.default
        else:
            try:
                value = option.parse(raw) if not isinstance(raw, bool) else raw
            except ValueError as exc:
                raise pytest.UsageError(f"{source}: {exc}") from None
        values[option.ini] = value
    if values["perf_min_windows"] > values["perf_max_windows"]:
        raise pytest.UsageError(
            f"--perf-min-windows ({values['perf_min_windows']}) exceeds --perf-max-windows "
            f"({values['perf_max_windows']}); raise the maximum or lower the minimum"
        )
    if values["tfserving_backend"] == "external" and not (
        values["tfserving_target"] and values["tfserving_rest_url"]
    ):
        raise pytest.UsageError(
            "--tfserving-backend=external needs both --tfserving-target HOST:PORT (gRPC) and "
            "--tfserving-rest-url http://HOST:PORT (REST, used for the readiness check) of the running server"
        )
    rootdir = Path(config.rootpath)
    for name in _PATH_SETTINGS:
        if values[name] is not None:
            path = Path(values[name]).expanduser()
            values[name] = path if path.is_absolute() else rootdir / path
    return Settings(**values)
