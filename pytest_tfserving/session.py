"""Long-lived state of one pytest session: backend, running servers, Redis, perf records, reports.

Registered as a plugin object by ``plugin.py``; its ``pytest_*`` methods are hooks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.backends.base import Backend, BackendError, RunningServer
from pytest_tfserving.backends.selection import select_backend
from pytest_tfserving.gate.baselines import (
    Baseline,
    BaselineError,
    Change,
    baseline_path,
    history_decision,
    load_baseline,
    read_baseline_from_git,
    write_baseline,
)
from pytest_tfserving.gate.ceilings import check_ceilings, parse_perf_marker
from pytest_tfserving.gate.deployments import (
    DeploymentStore,
    ReferenceUnavailable,
    deployment_record,
    plan_reference,
    record_digests,
)
from pytest_tfserving.gate.fingerprint import (
    collect_fingerprint,
    compare_fingerprints,
    hash_model_dir,
    spec_flags,
)
from pytest_tfserving.gate.outcome import relative_failed
from pytest_tfserving.options import Settings
from pytest_tfserving.perf.handle import PerfContext, PerfHandle
from pytest_tfserving.process import cleanup
from pytest_tfserving.report.json_report import write_json_report
from pytest_tfserving.report.markdown import append_step_summary, render_markdown
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import format_table
from pytest_tfserving.services.redis_service import (
    RedisService,
    connect_redis,
    find_redis_server,
    start_local_redis,
    start_redis_container,
)
from pytest_tfserving.services.server_pool import ServerPool

SESSION_KEY = pytest.StashKey["TfservingSession"]()
HANDLE_KEY = pytest.StashKey[PerfHandle]()
WORKER_OUTPUT_KEY = "pytest_tfserving_results"


def measurement_id(nodeid: str, name: str | None) -> str:
    """The baseline identity of a measurement: the test's nodeid, plus ``@name`` for named ones."""
    return nodeid if name is None else f"{nodeid}@{name}"


class TfservingSession:
    """One per pytest process; owns every server and Redis it starts."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._choice: tuple[Backend, str] | None = None
        self._pool: ServerPool | None = None
        self._redis: RedisService | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="pytest-tfserving-"))
        self.records: list[TestRecord] = []
        self.baseline_changes: list[Change] = []
        self.warnings: list[str] = []
        self._fingerprints: dict[int, dict[str, Any]] = {}
        self._server_digests: dict[int, dict[str, str]] = {}
        self._model_paths: dict[str, Path] = {}  # content hash -> model base path measured
        self._sections: list[tuple[str, str]] | None = None
        cleanup.install_handlers()

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
            self._pool = ServerPool(backend, self._workdir, self.settings.tfserving_startup_timeout)
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

    # -- baselines and fingerprints --------------------------------------------------------------
    def _repo_root(self) -> Path:
        rootdir = Path(self.config.rootpath)
        done = subprocess.run(
            ["git", "-C", str(rootdir), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BaselineError(
                f"--baseline-ref needs a git repository; {rootdir} is not inside one ({done.stderr.strip()})"
            )
        return Path(done.stdout.strip())

    def find_baseline(self, mid: str) -> tuple[Baseline | None, list[str]]:
        """The baseline to judge against, and notes (e.g. how the ref's copy differs from the tree's)."""
        path = baseline_path(self.settings.baselines_dir, mid)
        local = load_baseline(path, mid)
        ref = self.settings.baseline_ref
        if ref is None:
            return local, []
        root = self._repo_root()
        relative = path.resolve().relative_to(root.resolve())
        from_ref = read_baseline_from_git(ref, root, relative)
        notes: list[str] = []
        if from_ref is None and local is not None:
            notes.append(f"{relative} is new in the working tree (absent at {ref}); judged without it")
        elif from_ref is not None and local is None:
            notes.append(f"{relative} exists at {ref} but not in the working tree")
        elif from_ref is not None and local is not None and from_ref.measurement != local.measurement:
            notes.append(f"{relative} differs from its copy at {ref}; judged against {ref}")
        return from_ref, notes

    def fingerprint(self, server: RunningServer) -> dict[str, Any]:
        key = id(server)
        if key not in self._fingerprints:
            backend, _ = self.backend()
            digests = self._digests(server)
            models = {
                f"{m.name}/{m.variant}": digests[m.name] for m in server.spec.models if m.name in digests
            }
            self._fingerprints[key] = collect_fingerprint(
                backend=backend.name,
                server=server.description,
                models=models,
                server_flags=spec_flags(server.spec),
            )
        return self._fingerprints[key]

    def _digests(self, server: RunningServer) -> dict[str, str]:
        """Model name -> content hash for the server's models on this machine, once per server."""
        key = id(server)
        if key not in self._server_digests:
            digests = {}
            for model in server.spec.models:
                path = Path(model.base_path)
                if path.exists():
                    digests[model.name] = hash_model_dir(path)
                    self._model_paths[digests[model.name]] = path
            self._server_digests[key] = digests
        return self._server_digests[key]

    def deployment(self, server: RunningServer) -> dict[str, Any] | None:
        """The server's deployment record (None when a model directory is not on this machine)."""
        digests = self._digests(server)
        if len(digests) < len(server.spec.models):
            return None
        return deployment_record(server.spec, digests)

    def reference_server(
        self, baseline: Baseline | None, server: RunningServer
    ) -> tuple[RunningServer | None, str | None]:
        """For --ab-baseline: the baseline's own deployment, running, or None and the reason."""
        if not self.settings.ab_baseline or self.settings.update_baselines or baseline is None:
            return None, None
        backend, _ = self.backend()
        if backend.name == "external":
            return None, "the external backend cannot start the baseline's deployment"
        try:
            spec = plan_reference(
                baseline.deployment,
                baseline.fingerprint,
                self.deployment(server),
                self.fingerprint(server),
                DeploymentStore(self.settings.deployment_store),
            )
        except ReferenceUnavailable as why:
            return None, str(why)
        return self.pool().get(spec), None

    def store_deployment(self, record: dict[str, Any] | None) -> None:
        """Copy the models of a recorded deployment into the store (once per content hash)."""
        if record is None:
            return
        store = DeploymentStore(self.settings.deployment_store)
        for digest in record_digests(record).values():
            store.put(self._model_paths[digest], digest)

    def new_handle(self, item: pytest.Item) -> PerfHandle:
        marker = item.get_closest_marker("perf")
        checks = parse_perf_marker(
            marker.kwargs if marker else {}, default_tolerance=self.settings.perf_tolerance
        )
        context = PerfContext(
            settings=self.settings,
            checks=checks,
            find_baseline=lambda name: self.find_baseline(measurement_id(item.nodeid, name)),
            fingerprint=self.fingerprint,
            deployment=self.deployment,
            reference=self.reference_server,
            gpu_indices=_gpu_indices(self.settings.tfserving_gpus),
        )
        handle = PerfHandle(context)
        item.stash[HANDLE_KEY] = handle
        return handle

    # -- the gate --------------------------------------------------------------------------------
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
        self.records.append(
            TestRecord(item.nodeid, error=f"{type(exc).__name__}: {exc}", assertion_failed=failed)
        )

    def judge_test(self, item: pytest.Item) -> None:
        """Record the test's results; fail it on broken ceilings, regressions or failed comparisons."""
        handle = item.stash.get(HANDLE_KEY, None)
        if handle is None or (not handle.recorded and not handle.relative):
            if item.get_closest_marker("perf") is not None:
                # Not an error: the test passed; say why it has no row, with or without the fixture.
                self.warnings.append(
                    f"{item.nodeid}: marked perf but measured nothing "
                    "(call perf.measure, perf.compare or perf.record to gate it)"
                )
            return
        problems: list[str] = list(handle.notes)
        failed = False
        mismatch_fails = self.settings.perf_hardware_mismatch == "fail"
        for rec in handle.recorded:
            mid = measurement_id(item.nodeid, rec.name)
            ceilings = check_ceilings(handle.checks, rec.measurement)
            verdicts = tuple(rec.verdicts)
            self.records.append(
                TestRecord(
                    mid, rec.measurement, rec.baseline, verdicts, tuple(ceilings), fingerprint=rec.fingerprint
                )
            )
            problems += [f"{mid}: {n}" for n in rec.notes]
            for failure in ceilings:
                failed = True
                problems.append(f"{mid}: ceiling broken: {failure.message()}")
            for verdict in verdicts:
                if verdict.verdict == "regression" and not self.settings.update_baselines:
                    failed = True
                    problems.append(f"{mid}: {verdict.message()}")
                elif verdict.verdict == "incomparable":
                    diffs = compare_fingerprints(
                        rec.baseline.fingerprint if rec.baseline else {}, rec.fingerprint
                    )
                    text = f"{mid}: baseline from other hardware, not compared: " + "; ".join(diffs[:4])
                    problems.append(text)
                    failed = failed or (mismatch_fails and not self.settings.update_baselines)
                elif verdict.verdict == "inconclusive":
                    problems.append(f"{mid}: {verdict.message()}")
            if self.settings.update_baselines and not ceilings:
                path = baseline_path(self.settings.baselines_dir, mid)
                join, why = history_decision(load_baseline(path, mid), rec.fingerprint, verdicts)
                self.store_deployment(rec.deployment)
                self.baseline_changes.append(write_baseline(
                    path, mid, rec.measurement, rec.fingerprint, join_history=join, history_reason=why,
                    history=self.settings.baseline_history, deployment=rec.deployment,
                ))
        if handle.relative:
            self.records.append(TestRecord(item.nodeid, verdicts=tuple(handle.relative)))
            for relative in handle.relative:
                if relative_failed(relative):
                    failed = True
                    unsettled = relative.verdict == "inconclusive"
                    why = " -> not shown: the point estimate itself breaks the bound" if unsettled else ""
                    problems.append(f"{item.nodeid}: {relative.message()}{why}")
                elif relative.verdict == "inconclusive":
                    problems.append(f"{item.nodeid}: {relative.message()} (point estimate within the bound)")
        if failed:
            pytest.fail("performance gate:\n" + "\n".join(problems), pytrace=False)
        for text in problems:
            self.warnings.append(text)

    # -- hooks -----------------------------------------------------------------------------------
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

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.records or self.baseline_changes or self.warnings):
            return
        tr = terminalreporter
        tr.section("tfserving performance")
        if self.records:
            for line in format_table(self.records, width=tr._tw.fullwidth):
                tr.write_line(line)
        for text in self.warnings:
            tr.write_line(f"note: {text}", yellow=True)
        for change in self.baseline_changes:
            for line in change.lines():
                tr.write_line(line)
        for title, text in self._extra_sections():
            tr.write_sep("-", title)
            for line in text.splitlines():
                tr.write_line(line)
        written = [p for p in (self.settings.perf_report_md, self.settings.perf_report_json) if p]
        for path in written:
            tr.write_line(f"report written: {path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        try:
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                # pytest-xdist worker: the controller reports for all workers (see pytest_testnodedown).
                workeroutput[WORKER_OUTPUT_KEY] = pickle.dumps(
                    (self.records, self.baseline_changes, self.warnings)
                )
            else:
                self._write_reports()
        finally:
            self.stop_services()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: take over a finished worker's records, once, for the reports."""
        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if data:
            records, changes, warnings = pickle.loads(data)  # our own worker, same code and machine
            self.records += records
            self.baseline_changes += changes
            self.warnings += warnings

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

    def _extra_sections(self) -> list[tuple[str, str]]:
        if self._sections is None:
            hook = self.config.hook.pytest_tfserving_report_sections
            self._sections = [sec for result in hook(records=list(self.records)) if result for sec in result]
        return self._sections

    def _write_reports(self) -> None:
        s = self.settings
        if not self.records:
            return
        extra = "".join(f"\n## {title}\n\n{text.rstrip()}\n" for title, text in self._extra_sections())
        if s.perf_report_md:
            s.perf_report_md.parent.mkdir(parents=True, exist_ok=True)
            s.perf_report_md.write_text(render_markdown(self.records) + extra)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            append_step_summary(self.records, summary)
            if extra:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(extra)
        if s.perf_report_json:
            write_json_report(self.records, s.perf_report_json)
        if s.perf_report_plots:
            from pytest_tfserving.report.plots import plot_records

            plot_records(self.records, s.perf_report_plots)


def _gpu_indices(gpus: str | None) -> tuple[int, ...] | None:
    if not gpus or gpus == "all":
        return None
    text = gpus.removeprefix("device=")
    if "," in text or gpus.startswith("device="):
        return tuple(int(part) for part in text.split(","))
    return tuple(range(int(text)))
