"""Baselines: one diff-friendly JSON file per test, written atomically, readable from any git ref.

A baseline lives in the repository next to the tests so a PR shows its performance change as a
diff; ``read_baseline_from_git`` lets CI compare against the target branch's copy. A broken or
newer-schema file is never overwritten: the error says which file and how to fix it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_tfserving.gate.fingerprint import compare_fingerprints
from pytest_tfserving.gate.gate_settings import GateSettings
from pytest_tfserving.gate.verdicts import DEFAULT_MIN_RUNS, history_decides
from pytest_tfserving.load.results import HIGHER_IS_BETTER, LOWER_IS_BETTER, Measurement

# Optional fields (``deployment``, ``gate_settings``) do not bump the schema: an older plugin reads
# the file and ignores them, a newer one reads an older file as "not recorded".
SCHEMA_VERSION = 2
READABLE_SCHEMAS: frozenset[int] = frozenset({1, 2})  # 1: no run history (read as a history of one run)
DEFAULT_HISTORY = 5  # runs kept per baseline: enough to estimate run-to-run spread, recent enough to matter
HEADLINE_METRICS: tuple[str, ...] = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "error_rate",
    "cpu_percent",
    "rss_mb",
    "gpu_memory_mb",
)
MAX_HISTOGRAM_CHARS = 20_000  # keep baseline diffs reviewable
_MAX_STEM = 150
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class BaselineError(ValueError):
    """A baseline that cannot be used; the message names the file (or git ref) and the fix."""


@dataclass(frozen=True)
class RunSummary:
    """One recorded run of a test, reduced to what the judge needs across runs: the median of each
    metric's window values. Runs of one baseline come from separate sessions (separate server starts),
    so their spread is the run-to-run drift that window statistics cannot see."""

    created: str
    values: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "values": dict(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        values = {str(k): float(v) for k, v in dict(data["values"]).items() if v is not None}
        return cls(created=str(data.get("created", "")), values=values)


def summarize_run(measurement: Measurement, created: str) -> RunSummary:
    """Median of the window values of every gated-kind metric the run measured."""
    values: dict[str, float] = {}
    for name in sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER):
        window_values = [v for v in measurement.window_values(name) if math.isfinite(v)]
        if window_values:
            values[name] = statistics.median(window_values)
    return RunSummary(created, values)


@dataclass(frozen=True)
class Baseline:
    """The latest recorded run of a test (``measurement``, every window) plus the summaries of the
    runs recorded before it on the same deployment (``runs``, oldest first, the latest included)."""

    nodeid: str
    measurement: Measurement
    fingerprint: dict[str, Any]
    created: str  # ISO 8601, UTC
    schema_version: int = SCHEMA_VERSION
    source: str = ""  # file path or "REF:path" it was read from
    runs: tuple[RunSummary, ...] = ()
    deployment: dict[str, Any] | None = None  # deployments.deployment_record of what was measured
    # What the run was gated with (marker and session settings); under --baseline-ref the ref's
    # record stands against the working tree's. None: recorded before baselines kept it.
    gate_settings: GateSettings | None = None

    @property
    def history(self) -> tuple[RunSummary, ...]:
        """The recorded runs, oldest first; a baseline without history is a history of its one run."""
        return self.runs or (summarize_run(self.measurement, self.created),)

    def run_values(self, metric: str) -> list[float]:
        """One value per recorded run (the median of that run's windows) for ``metric``."""
        return [run.values[metric] for run in self.history if metric in run.values]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "nodeid": self.nodeid,
            "created": self.created,
            "fingerprint": self.fingerprint,
            "measurement": _trimmed(self.measurement.to_dict()),
            "runs": [run.to_dict() for run in self.history],
            **({"deployment": self.deployment} if self.deployment is not None else {}),
            **({"gate_settings": self.gate_settings.to_dict()} if self.gate_settings is not None else {}),
        }


@dataclass(frozen=True)
class MetricChange:
    metric: str
    old: float | None
    new: float | None

    def line(self) -> str:
        old = "-" if self.old is None else f"{self.old:.4g}"
        new = "-" if self.new is None else f"{self.new:.4g}"
        if self.old and self.new is not None:
            return f"{self.metric}: {old} -> {new} ({(self.new - self.old) / self.old:+.1%})"
        return f"{self.metric}: {old} -> {new}"


@dataclass(frozen=True)
class Change:
    """What ``write_baseline`` did, for printing: old -> new per headline metric."""

    path: Path
    nodeid: str
    created: bool  # no previous baseline
    metrics: tuple[MetricChange, ...] = field(default=())
    runs: int = 1  # runs in the baseline's history after the write
    history_note: str = ""  # why the history was kept or restarted

    def lines(self) -> list[str]:
        head = f"{'new' if self.created else 'updated'} baseline {self.path} ({self.nodeid})"
        history = f"  history: {self.runs} run{'s' if self.runs != 1 else ''}"
        history += f" ({self.history_note})" if self.history_note else ""
        return [head, *("  " + m.line() for m in self.metrics), history]


def reference_value(baseline: Baseline, metric: str, min_runs: int = DEFAULT_MIN_RUNS) -> float | None:
    """What a baseline stands for: the figure the judge compares a new run with, printed when it is
    recorded and in the table alike. The geometric mean of the recorded runs' medians once
    ``min_runs`` are recorded, else the median of the latest run's windows; a metric measured for
    the whole run only (GPU memory) is the run's figure."""
    runs = [v for v in baseline.run_values(metric) if v > 0 and math.isfinite(v)]
    if history_decides(len(runs), min_runs):
        return math.exp(statistics.fmean(math.log(v) for v in runs))
    values = [v for v in baseline.measurement.window_values(metric) if math.isfinite(v)]
    return statistics.median(values) if values else baseline.measurement.metric(metric)


def baseline_filename(nodeid: str) -> str:
    """``dir/test_x.py::test_y[grpc]`` -> ``dir__test_x__test_y-grpc.json``; stable across runs.

    When the readable form loses information (odd characters, very long ids) a short hash of the
    nodeid is appended so two tests never share a file.
    """
    path, sep, rest = nodeid.partition("::")
    stem = path[:-3] if path.endswith(".py") else path
    stem = stem.replace("/", "__").replace("\\", "__")
    if sep:
        stem += "__" + rest.replace("::", "__")
    stem = stem.replace("[", "-").replace("]", "")
    safe = _SAFE.sub("_", stem).strip(".") or "test"
    brackets_ok = "[" not in nodeid or (nodeid.count("[") == nodeid.count("]") == 1 and nodeid.endswith("]"))
    lossy = safe != stem or not brackets_ok
    if lossy or len(safe) > _MAX_STEM:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
        safe = f"{safe[:_MAX_STEM]}-{digest}"
    return safe + ".json"


def baseline_path(directory: Path | str, nodeid: str) -> Path:
    return Path(directory) / baseline_filename(nodeid)


def json_safe(value: Any) -> Any:
    """JSON has no NaN/Infinity: store them as null rather than writing invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _trimmed(data: dict[str, Any]) -> dict[str, Any]:
    hist = data.get("latency_histogram")
    if hist is not None and len(json.dumps(hist, default=str)) > MAX_HISTOGRAM_CHARS:
        data = {
            **data,
            "latency_histogram": None,
            "extra": {**data.get("extra", {}), "latency_histogram_trimmed": 1.0},
        }
    return data


def _dump(value: Any, indent: str = "") -> str:
    """Like ``json.dumps(indent=2, sort_keys=True)`` but a list of scalars stays on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(str(k))}: {_dump(v, inner)}" for k, v in sorted(value.items()))
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(not isinstance(v, (dict, list)) for v in value):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in value) + "]"
        return "[\n" + ",\n".join(inner + _dump(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, allow_nan=False)


def dumps_baseline(baseline: Baseline) -> str:
    """Sorted, indented JSON (one value per line for readable diffs); scalar lists stay on one line."""
    return _dump(json_safe(baseline.to_dict())) + "\n"


def parse_baseline(text: str, source: str) -> Baseline:
    """Parse baseline JSON; ``source`` names the file or ``REF:path`` in error messages."""
    fix = f"fix or delete {source} and rerun with --update-baselines to record it again"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"baseline {source} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise BaselineError(f"baseline {source} is not a JSON object; {fix}")
    version = data.get("schema_version")
    if version not in READABLE_SCHEMAS:
        hint = (
            "it was written by a newer pytest-tfserving; upgrade the plugin"
            if isinstance(version, int) and version > SCHEMA_VERSION
            else fix
        )
        raise BaselineError(
            f"baseline {source} has schema_version {version!r}, this plugin reads "
            f"{', '.join(map(str, sorted(READABLE_SCHEMAS)))}; {hint}"
        )
    try:
        measurement = Measurement.from_dict(data["measurement"])
        runs = tuple(RunSummary.from_dict(run) for run in data.get("runs") or ())
        gate = data.get("gate_settings")
        return Baseline(
            nodeid=str(data["nodeid"]),
            measurement=measurement,
            fingerprint=dict(data.get("fingerprint") or {}),
            created=str(data.get("created", "")),
            schema_version=version,
            source=source,
            runs=runs,
            deployment=dict(data["deployment"]) if data.get("deployment") is not None else None,
            gate_settings=GateSettings.from_dict(gate) if gate is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineError(f"baseline {source} is missing or has bad fields ({exc!r}); {fix}") from None


def load_baseline(path: Path | str, nodeid: str | None = None) -> Baseline | None:
    """The baseline at ``path``, or None when there is none yet.

    With ``nodeid``, a file recorded for another test (a file name collision or a renamed test
    whose file was copied) is an error rather than a silent wrong comparison.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc}") from None
    baseline = parse_baseline(text, str(path))
    if nodeid is not None and baseline.nodeid != nodeid:
        raise BaselineError(
            f"baseline {path} was recorded for {baseline.nodeid!r}, not {nodeid!r}; "
            f"delete it and rerun with --update-baselines"
        )
    return baseline


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_baseline(
    path: Path | str,
    nodeid: str,
    measurement: Measurement,
    fingerprint: Mapping[str, Any],
    *,
    created: str | None = None,
    join_history: bool = False,
    history_reason: str = "",
    history: int = DEFAULT_HISTORY,
    deployment: Mapping[str, Any] | None = None,
    gate_settings: GateSettings | None = None,
) -> Change:
    """Record ``measurement`` as the baseline at ``path`` (atomic: readers see old or new, never half).

    ``join_history`` appends this run to the old baseline's run history, keeping the newest
    ``history`` runs; otherwise the history restarts with this run alone. ``history_reason`` says
    why, for the printed change. ``deployment`` (``deployments.deployment_record``) lets a later
    session serve this deployment again as the A/B reference; ``gate_settings`` is what the run was
    gated with (the record a --baseline-ref session holds the working tree to). Raises
    ``BaselineError`` without touching the file when the existing one is unreadable.
    """
    if history < 1:
        raise ValueError(f"history={history!r} must be >= 1 (runs kept per baseline)")
    path = Path(path)
    old = load_baseline(path)
    stamp = created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    previous = old.history if (old is not None and join_history) else ()
    runs = (*previous, summarize_run(measurement, stamp))[-history:]
    baseline = Baseline(
        nodeid, measurement, dict(fingerprint), stamp, source=str(path), runs=runs,
        deployment=dict(deployment) if deployment is not None else None,
        gate_settings=gate_settings,
    )
    _atomic_write(path, dumps_baseline(baseline))
    pairs = (
        (name, None if old is None else reference_value(old, name), reference_value(baseline, name))
        for name in HEADLINE_METRICS
    )
    metrics = tuple(MetricChange(name, a, b) for name, a, b in pairs if a is not None or b is not None)
    return Change(path, nodeid, old is None, metrics, runs=len(runs), history_note=history_reason)


def history_decision(
    old: Baseline | None, fingerprint: Mapping[str, Any], verdicts: Sequence[Any]
) -> tuple[bool, str]:
    """Should a refreshed run join the old baseline's run history? (join, reason for the printout)

    Only runs of the same deployment belong together: same fingerprint (hardware, server, model
    hashes, flags) and no significant change judged against the old baseline's runs. Otherwise the
    new run starts a new history, so an accepted regression does not mix with the runs it replaced.
    A verdict from the window-level test (history shorter than the judge's minimum) does not restart
    the history: that test cannot tell drift between sessions from a change, and restarting on it
    would keep a noisy machine from ever collecting the runs that can.
    """
    if old is None:
        return False, "first run"
    differences = compare_fingerprints(old.fingerprint, fingerprint)
    if differences:
        return False, "restarted: " + "; ".join(differences[:2])
    changed = sorted({
        v.metric for v in verdicts
        if v.verdict in ("regression", "improvement") and getattr(v, "baseline_runs", 0) > 0
    })
    if changed:
        return False, f"restarted: significant change in {', '.join(changed)}"
    return True, "same deployment, no significant change"


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo_root), *args], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise BaselineError("git is not installed; install git or compare against a baseline file") from None


def check_ref(ref: str, repo_root: Path | str) -> None:
    """A BaselineError naming the fix unless ``ref`` names a commit in the repository."""
    root = Path(repo_root)
    resolved = _git(root, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        message = resolved.stderr.strip() or resolved.stdout.strip()
        raise BaselineError(
            f"cannot read baselines from git ref {ref!r} in {root}: "
            f"{message or 'unknown ref'}; fetch it first (e.g. git fetch origin) "
            f"or pass an existing ref"
        )


def read_baseline_from_git(ref: str, repo_root: Path | str, relative_path: Path | str) -> Baseline | None:
    """The baseline as committed at ``ref`` (e.g. ``origin/main``); None when the file is absent there."""
    root = Path(repo_root)
    rel = Path(relative_path)
    if rel.is_absolute():
        try:
            rel = rel.relative_to(root.resolve())
        except ValueError:
            raise BaselineError(f"{relative_path} is not inside the repository {root}") from None
    spec = f"{ref}:./{PurePosixPath(*rel.parts)}"
    check_ref(ref, root)
    if _git(root, "cat-file", "-e", spec).returncode != 0:
        return None
    shown = _git(root, "show", spec)
    if shown.returncode != 0:
        raise BaselineError(f"git show {spec} failed in {root}: {shown.stderr.strip()}")
    return parse_baseline(shown.stdout, f"{ref}:{PurePosixPath(*rel.parts)}")
