"""Long-lived state of one pytest session: backend, running servers, Redis, fingerprints, the gate.

Registered as a plugin object by ``plugin.py``; its ``pytest_*`` methods are hooks. Reporting lives
in ``report/reporter.py``, the pass/fail rule in ``gate/outcome.py``, xdist's roles in ``xdist_roles.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.backends.base import Backend, BackendError
from pytest_tfserving.backends.selection import select_backend, serves_on_gpu
from pytest_tfserving.gate.alpha_budget import SessionAlpha
from pytest_tfserving.gate.baseline_lookup import BaselineLookup
from pytest_tfserving.gate.baselines import (
    Baseline,
    BaselineError,
    baseline_path,
    history_decision,
    load_baseline,
    remove_stale_temp_files,
    stale_temp_files_line,
    write_baseline,
)
from pytest_tfserving.gate.ceilings import check_ceilings, parse_perf_marker
from pytest_tfserving.gate.gate_changes import GateChangesReport, file_of, session_loosenings
from pytest_tfserving.gate.gate_settings import GateChange, GateSettings, compare_gates, gate_settings_of
from pytest_tfserving.gate.measured_servers import MeasuredServers
from pytest_tfserving.gate.outcome import GatePolicy, gate_result
from pytest_tfserving.gate.run_drift import RunDriftPools
from pytest_tfserving.options import Settings
from pytest_tfserving.perf.handle import PerfContext, PerfHandle, Recorded
from pytest_tfserving.process import cleanup
from pytest_tfserving.report.failures import error_line
from pytest_tfserving.report.gate_changes import GATE_REPORT_KEY, report_from_records, terminal_lines
from pytest_tfserving.report.progress import progress_for
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.reporter import PerfReporter
from pytest_tfserving.services.redis_service import (
    RedisService,
    connect_redis,
    find_redis_server,
    start_local_redis,
    start_redis_container,
)
from pytest_tfserving.services.server_pool import ServerPool
from pytest_tfserving.serving.gpu_share import session_gpu_servers
from pytest_tfserving.shard_split import SHARD_SUITE_KEY, shard_of

SESSION_KEY = pytest.StashKey["TfservingSession"]()
HANDLE_KEY = pytest.StashKey[PerfHandle]()
# What a pytest-xdist worker collected, for the controller's gate-changes check (--baseline-ref).
COLLECTED_OUTPUT_KEY = "pytest_tfserving_collected"


def measurement_id(nodeid: str, name: str | None) -> str:
    """The baseline identity of a measurement: the test's nodeid, plus ``@name`` for named ones."""
    return nodeid if name is None else f"{nodeid}@{name}"


class TfservingSession:
    """One per pytest process; owns every server and Redis it starts."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.reporter = PerfReporter(config, settings)
        self.reporter.shard = shard_of(config)
        self.baselines = BaselineLookup(settings.baselines_dir, settings.baseline_ref, Path(config.rootpath))
        self._drift_pools: RunDriftPools | None = None
        self._choice: tuple[Backend, str] | None = None
        self._pool: ServerPool | None = None
        self._redis: RedisService | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="pytest-tfserving-"))
        self.servers = MeasuredServers(settings, lambda: self.backend()[0].name, self.pool)
        self.alpha = SessionAlpha(settings.perf_alpha)
        # For the gate-changes check: the test files collected (before -k/-m deselection) and the
        # number of perf tests selected; a pytest-xdist controller gets them from its workers.
        self.collected_files: set[str] = set()
        self.perf_tests = 0
        # As one shard of a pytest-split suite (shard_split.py): the suite's tests the other shards
        # run, and the suite's perf tests, which share --perf-alpha (a plain run: its own).
        self.elsewhere: tuple[str, ...] = ()
        self.alpha_tests = 0
        self.gate_report: GateChangesReport | None = None
        cleanup.install_handlers()
        if not _is_worker(config):  # what killed baseline writes left behind; a live writer's is kept
            removed = remove_stale_temp_files(settings.baselines_dir)
            if removed:
                self.reporter.warnings.append(stale_temp_files_line(settings.baselines_dir, removed))

    # -- services --------------------------------------------------------------------------------
    def backend(self) -> tuple[Backend, str]:
        if self._choice is None:
            s = self.settings
            image = f"{s.tfserving_image}:{s.tfserving_tag}" if s.tfserving_tag else s.tfserving_image
            try:
                self._choice = select_backend(
                    s.tfserving_backend,
                    image=image,
                    binary=s.tfserving_binary,
                    gpus=s.tfserving_gpus,
                    external_grpc=s.tfserving_target,
                    external_rest=s.tfserving_rest_url,
                )
            except BackendError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._choice

    def pool(self) -> ServerPool:
        if self._pool is None:
            backend, _ = self.backend()
            gpu_servers = session_gpu_servers(
                on_gpu=serves_on_gpu(backend),
                ab_baseline=self.settings.ab_baseline,
                update_baselines=self.settings.update_baselines,
                replicas=self.settings.ab_replicas,
            )
            self._pool = ServerPool(
                backend, self._workdir, self.settings.tfserving_startup_timeout, gpu_servers
            )
        return self._pool

    def redis(self) -> RedisService:
        """Redis as the settings ask: external URL, local redis-server, or a container."""
        if self._redis is None:
            s = self.settings
            choice = s.redis_backend
            if choice == "auto":
                choice = "external" if s.redis_url else ("local" if find_redis_server() else "docker")
            if choice == "external":
                if not s.redis_url:
                    raise BackendError("--redis-backend=external needs --redis-url=redis://HOST:PORT/0")
                self._redis = connect_redis(s.redis_url)
            elif choice == "local":
                self._redis = start_local_redis(self._workdir)
            else:
                self._redis = start_redis_container(image=s.redis_image)
        return self._redis

    # -- perf handles ----------------------------------------------------------------------------
    def new_handle(self, item: pytest.Item) -> PerfHandle:
        marker = item.get_closest_marker("perf")
        checks = parse_perf_marker(
            marker.kwargs if marker else {}, default_tolerance=self.settings.perf_tolerance
        )
        context = PerfContext(
            settings=self.settings,
            checks=checks,
            find_baseline=lambda name: self.baselines.find(measurement_id(item.nodeid, name)),
            fingerprint=self.servers.fingerprint,
            deployment=self.servers.deployment,
            reference=self.servers.reference_server,
            gpu_indices=_gpu_indices(self.settings.tfserving_gpus),
            alpha=self.alpha.per_test(),
            progress=progress_for(self.config, item.nodeid),
            pooled_drift=lambda baseline: self.drift_pools().for_baseline(baseline),
        )
        handle = PerfHandle(context)
        item.stash[HANDLE_KEY] = handle
        return handle

    # -- the gate --------------------------------------------------------------------------------
    def drift_pools(self) -> RunDriftPools:
        """The runner's drift pooled over every baseline judged against (the ref's under
        --baseline-ref), read once, at the session's first judged measurement."""
        if self._drift_pools is None:
            self._drift_pools = RunDriftPools.from_baselines(self.baselines.all_baselines())
        return self._drift_pools

    @contextlib.contextmanager
    def exclusive_perf_lock(self) -> Iterator[None]:
        """One perf test at a time on this machine (pytest-xdist workers included): an flock."""
        lock_dir = self.settings.tfserving_model_cache
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / "perf.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def record_error(self, item: pytest.Item, exc: BaseException) -> None:
        # A failed assertion (pytest.fail included) is the test's verdict; anything else (a crashed
        # server, a broken backend) is an error of the measurement and is reported as one.
        failed = isinstance(exc, (AssertionError, pytest.fail.Exception))
        error = error_line(exc, Path(self.config.rootpath))
        self.reporter.records.append(TestRecord(item.nodeid, error=error, assertion_failed=failed))

    def judge_test(self, item: pytest.Item) -> None:
        """Record the test's results; fail it as ``gate/outcome.py`` decides (ceilings, regressions,
        comparisons), and, only when it passed, re-record its baselines under --update-baselines."""
        handle = item.stash.get(HANDLE_KEY, None)
        if handle is None or (not handle.recorded and not handle.relative):
            if item.get_closest_marker("perf") is not None:
                # Not an error: the test passed; say why it has no row, with or without the fixture.
                self.reporter.warnings.append(
                    f"{item.nodeid}: marked perf but measured nothing "
                    "(call perf.measure, perf.compare or perf.record to gate it)"
                )
            return
        policy = GatePolicy.from_settings(self.settings)
        records: list[TestRecord] = []
        # What each measurement is gated with (its windows included): recorded with its baseline,
        # compared under --baseline-ref.
        gates = [gate_settings_of(handle.checks, self.settings, rec.windows) for rec in handle.recorded]
        for rec, gate in zip(handle.recorded, gates, strict=True):
            mid = measurement_id(item.nodeid, rec.name)
            ceilings = tuple(check_ceilings(handle.checks, rec.measurement))
            records.append(TestRecord(
                mid, rec.measurement, rec.baseline, tuple(rec.verdicts), ceilings,
                fingerprint=rec.fingerprint, notes=tuple(rec.notes), policy=policy,
                gate_changes=self._gate_changes(rec.baseline, gate),
            ))
            self.reporter.records.append(records[-1])
        if handle.relative:
            records.append(TestRecord(item.nodeid, verdicts=tuple(handle.relative), policy=policy))
            self.reporter.records.append(records[-1])
        result = gate_result(handle.notes, [(r.nodeid, r.decision) for r in records])
        if result.failed:
            # All or nothing: a test that fails (a broken ceiling in any measurement, a failed
            # in-run claim) re-records none of its baselines under --update-baselines.
            pytest.fail(result.failure_text(), pytrace=False)
        if self.settings.update_baselines:
            for rec, gate in zip(handle.recorded, gates, strict=True):
                self._update_baseline(measurement_id(item.nodeid, rec.name), rec, gate)
        self.reporter.warnings += result.lines

    def _gate_changes(self, baseline: Baseline | None, gate: GateSettings | None) -> tuple[GateChange, ...]:
        """Under --baseline-ref, how this test gates differently from what its baseline at the ref
        recorded; a baseline recorded before gate settings were kept is not compared."""
        recorded = None if baseline is None else baseline.gate_settings
        if self.settings.baseline_ref is None or recorded is None or gate is None:
            return ()
        return compare_gates(recorded, gate)

    def _update_baseline(self, mid: str, rec: Recorded, gate: GateSettings | None) -> None:
        path = baseline_path(self.settings.baselines_dir, mid)
        join, why = history_decision(load_baseline(path, mid), rec.fingerprint, tuple(rec.verdicts))
        self.servers.store_deployment(rec.deployment)
        self.reporter.baseline_changes.append(write_baseline(
            path, mid, rec.measurement, rec.fingerprint, join_history=join, history_reason=why,
            history=self.settings.baseline_history, deployment=rec.deployment, gate_settings=gate,
        ))

    # -- hooks -----------------------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """--perf-alpha is shared by the perf tests this session runs (after -m/-k deselection), or
        as a pytest-split shard by those of the whole suite; every xdist worker collects the same
        items, so each computes the same share."""
        self.perf_tests = sum(map(is_perf_test, session.items))
        suite = self.config.stash.get(SHARD_SUITE_KEY, None)
        if suite is not None:
            self.elsewhere = suite.elsewhere(item.nodeid for item in session.items)
        self._set_alpha_tests(self.perf_tests if suite is None else suite.perf_tests)
        if _is_worker(self.config):
            self.config.workeroutput[COLLECTED_OUTPUT_KEY] = {  # type: ignore[attr-defined]
                "files": sorted(self.collected_files), "perf_tests": self.perf_tests,
                "elsewhere": list(self.elsewhere), "alpha_tests": self.alpha_tests,
            }

    def _set_alpha_tests(self, tests: int) -> None:
        self.alpha_tests = tests
        self.alpha = SessionAlpha(self.settings.perf_alpha, tests)
        self.reporter.alpha_tests = tests

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.collected_files.add(file_of(item.nodeid))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """The pytest-xdist controller: take over what a worker collected (all collect the same)."""
        collected = getattr(node, "workeroutput", {}).get(COLLECTED_OUTPUT_KEY)
        if collected:
            self.collected_files.update(collected["files"])
            self.perf_tests = max(self.perf_tests, int(collected["perf_tests"]))
            self.elsewhere = tuple(sorted({*self.elsewhere, *collected.get("elsewhere", ())}))
            self._set_alpha_tests(max(self.alpha_tests, int(collected.get("alpha_tests", 0))))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """After every test (and every xdist worker) is done: under --baseline-ref, check the gate
        against the ref and fail the session for what no test could fail for (a baselined
        measurement that did not run, a session setting that switches the gate off)."""
        result = yield
        ran = not session.config.option.collectonly and not _is_worker(self.config)
        if ran and self.settings.baseline_ref is not None and self.perf_tests:
            self.gate_report = self._gate_report(self.settings.baseline_ref)
            self.config.stash[GATE_REPORT_KEY] = self.gate_report
            if self.gate_report.fails_session:
                session.testsfailed += 1  # exit status 1, as pytest-cov fails a run under its threshold
        return result

    def _gate_report(self, ref: str) -> GateChangesReport:
        errors: list[str] = []
        at_ref: tuple[str, ...] = ()
        try:
            at_ref = self.baselines.measurements_at_ref()
        except (BaselineError, OSError, subprocess.SubprocessError) as exc:
            errors.append(f"cannot list the baselines at {ref}: {exc}")
        return report_from_records(
            self.reporter.records,
            ref=ref,
            allowed=self.settings.allow_gate_changes,
            at_ref=at_ref,
            collected_files=self.collected_files,
            elsewhere=self.elsewhere,
            session=session_loosenings(update_baselines=self.settings.update_baselines),
            errors=errors,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.gate_report is None:
            return
        terminalreporter.write_sep("-", f"tfserving gate changes (against {self.gate_report.ref})")
        for line, red in terminal_lines(self.gate_report):
            terminalreporter.write_line(line, red=red, bold=red)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        lines = [
            f"tfserving: baselines {s.baselines_dir}"
            + (" (updating)" if s.update_baselines else "")
            + (f", judged against git ref {s.baseline_ref}" if s.baseline_ref else "")
        ]
        _, reason = self.backend()
        lines.insert(0, f"tfserving: backend {reason}")
        return lines

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        """Stop every service after the other sessionfinish hooks (the reports included), whatever they
        raise; innermost wrapper, so before pytest-xdist's worker hands its results over."""
        try:
            return (yield)
        finally:
            self.stop_services()

    def stop_services(self) -> None:
        errors: list[BaseException] = []
        if self._pool is not None:
            errors += self._pool.stop_all()
        if self._redis is not None:
            try:
                self._redis.stop()
            except Exception as exc:
                errors.append(exc)
            self._redis = None
        shutil.rmtree(self._workdir, ignore_errors=True)
        if errors:
            raise BackendError("stopping servers failed: " + "; ".join(map(str, errors)))


def _is_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker has ``config.workeroutput`` (set before configure)."""
    return hasattr(config, "workeroutput")


def is_perf_test(item: pytest.Item) -> bool:
    """Marked ``perf`` or using the ``perf`` fixture: a test whose verdicts share --perf-alpha."""
    return item.get_closest_marker("perf") is not None or "perf" in getattr(item, "fixturenames", ())


def _gpu_indices(gpus: str | None) -> tuple[int, ...] | None:
    if not gpus or gpus == "all":
        return None
    text = gpus.removeprefix("device=")
    if "," in text or gpus.startswith("device="):
        return tuple(int(part) for part in text.split(","))
    return tuple(range(int(text)))
