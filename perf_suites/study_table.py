"""The study's table rebuilt from this run's perf records, with the study's own figures beside ours.

One row per measurement the suite names (``<test nodeid>@<name>``), so latency of one request and
throughput under concurrency stay separate rows instead of being mixed as the study does. Pure
functions of the records: the conftest hook only hands them over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_tfserving.gate.verdicts import RelativeVerdict
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.report.records import TestRecord

TITLE = "ResNet50 study: measured here vs the study's figures"
STUDY_HARDWARE = "the study's (TF Serving 2.13, Xeon E5-2680 v4 + Tesla V100)"


@dataclass(frozen=True)
class Step:
    """A table row: which named measurement fills it, what it is compared with, the study's figure."""

    label: str
    pattern: str  # regex matched against the measurement name (the part after "@")
    kind: str  # "latency" (compare p50) or "throughput" (compare req/s)
    reference: str | None  # regex of the measurement this row's change is relative to; "": none shown
    study: str = ""


# The study's rows: baseline 156 ms / 64 req/s; INT8 89 ms / 112 req/s; threads 8/8 76 ms / 132 req/s.
STEPS: tuple[Step, ...] = (
    Step("baseline fp32 (SavedModel)", r"fp32-c1", "latency", None, "156 ms, CPU 85 %, GPU 72 %"),
    # No change column: measured after fp32-c1 on the same server, not interleaved with it, and the
    # first measurement on a fresh server reads slower (order swapped here, the gap swapped too).
    Step("baseline fp32 (SavedModel)", r"fp32-single", "latency", ""),
    Step("baseline fp32 (SavedModel)", r"fp32-c\d+", "throughput", None, "64 req/s"),
    Step("1. INT8 full (TFLite)", r"int8-c1", "latency", r"fp32-c1", "89 ms, CPU 68 %, GPU 45 %"),
    Step("1. INT8 full (TFLite)", r"int8-c\d+", "throughput", r"fp32-c(?!1$)\d+", "112 req/s"),
    Step("1. INT8 dynamic-range (TFLite)", r"int8-dynamic-c1", "latency", r"fp32-c1"),
    Step("1. FP16 weights (TFLite)", r"fp16-c1", "latency", r"fp32-c1"),
    Step("2. threads tuned (fp32)", r"threads-tuned", "throughput", r"fp32-c(?!1$)\d+",
         "76 ms, 132 req/s, CPU 58 %, GPU 42 % (8/8 threads, on INT8)"),
    Step("batching off (fp32)", r"batching-off-c\d+", "throughput", r"fp32-c(?!1$)\d+"),
    Step("batching on (fp32)", r"batching-on-c\d+", "throughput", r"batching-off-c\d+"),
    Step("3. Redis cache (in front of INT8)", r"cache-r\d+", "latency", r"int8-c1", "no figure"),
)


def _name(record: TestRecord) -> str | None:
    _, at, name = record.nodeid.rpartition("@")
    return name if at else None


def _test_id(record: TestRecord) -> str:
    return record.nodeid.rpartition("@")[0] or record.nodeid


def _find(records: Sequence[TestRecord], pattern: str | None) -> TestRecord | None:
    if pattern is None:
        return None
    regex = re.compile(pattern)
    return next((r for r in records if r.measurement is not None and (n := _name(r)) is not None
                 and regex.fullmatch(n)), None)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _change(kind: str, m: Measurement, ref: Measurement | None) -> str:
    if ref is None:
        return "reference"
    if kind == "latency":
        base, cur, what = ref.p50_ms, m.p50_ms, "p50"
    else:
        base, cur, what = ref.rps, m.rps, "req/s"
    if not base or not math.isfinite(base) or not math.isfinite(cur):
        return "-"
    return f"{what} {(cur - base) / base * 100:+.0f} %"


def _relative(records: Sequence[TestRecord], test_id: str) -> str:
    texts = []
    for record in records:
        if record.nodeid != test_id:
            continue
        for v in record.verdicts:
            if isinstance(v, RelativeVerdict) and v.ratio is not None:
                bound = " ".join(p for p in (None if v.max_ratio is None else f"<={v.max_ratio:g}x",
                                             None if v.min_ratio is None else f">={v.min_ratio:g}x") if p)
                texts.append(f"{v.metric} {v.label_a}/{v.label_b} {v.ratio:.3g}x ({bound}): {v.verdict}")
    return "; ".join(texts) or "-"


def _load(m: Measurement) -> str:
    if m.extra.get("single_request"):
        return "1 at a time (pytest-benchmark)"
    if m.mode == "open":
        return f"open {m.target_rps:g}/s"
    return f"c={m.concurrency}"


def _extra_note(m: Measurement) -> str:
    notes = []
    if "intra_op" in m.extra:
        chosen = f"{int(m.extra['intra_op'])}/{int(m.extra['inter_op'])}"
        notes.append("intra/inter " + ("TF default" if chosen == "0/0" else chosen))
        sweep = [(key.removeprefix("sweep_rps_").replace("x", "/").replace("0/0", "default"), value)
                 for key, value in m.extra.items() if key.startswith("sweep_rps_")]
        if sweep:
            notes.append("sweep req/s " + ", ".join(f"{name} {value:.1f}" for name, value in sweep))
    if "cache_hit_ratio" in m.extra:
        notes.append(f"hit ratio {m.extra['cache_hit_ratio']:.2f} (repeat share "
                     f"{m.extra.get('repeat_share', float('nan')):.2f})")
        if "cache_hit_mean_ms" in m.extra and "cache_miss_mean_ms" in m.extra:
            notes.append(f"hit {m.extra['cache_hit_mean_ms']:.2f} ms vs miss "
                         f"{m.extra['cache_miss_mean_ms']:.2f} ms")
    return ", ".join(notes)


def study_table(records: Sequence[TestRecord], hardware: str = "this machine") -> str | None:
    """The Markdown table, or None when the run measured none of the study's steps."""
    gpu = any(r.measurement is not None and r.measurement.gpu_util_percent is not None for r in records)
    head = ["step", "load", "p50 ms", "p99 ms", "req/s", "CPU %"] + (["GPU %"] if gpu else [])
    head += ["change", "in-run check", "notes", f"study: {STUDY_HARDWARE}"]
    lines = [f"Measured here ({hardware}) next to {STUDY_HARDWARE}. Each row is one measurement; "
             "latency rows change by p50, throughput rows by req/s, against the row named in the "
             "suite (fp32 baseline at the same kind of load). CPU % is the server process's "
             "(100 = one core).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    used: set[str] = set()
    rows = 0
    for step in STEPS:
        record = _find([r for r in records if r.nodeid not in used], step.pattern)
        if record is None or record.measurement is None:
            continue
        used.add(record.nodeid)
        m = record.measurement
        ref = _find(records, step.reference)
        cells = [step.label, _load(m), _num(m.p50_ms), _num(m.p99_ms), _num(m.rps), _num(m.cpu_percent, 0)]
        if gpu:
            cells.append(_num(m.gpu_util_percent, 0))
        change = "-" if step.reference == "" else _change(step.kind, m, ref.measurement if ref else None)
        cells += [change,
                  _relative(records, _test_id(record)), _extra_note(m) or "-", step.study or "-"]
        lines.append("| " + " | ".join(cells) + " |")
        rows += 1
    if rows == 0:
        return None
    lines += ["", "The study's claims, for reading the rows: latency -45 % and throughput +106 % overall "
              "(its text says 156 -> 89 ms, its last row says 76 ms). Its step 2 thread flags do not "
              "reach a TFLite model (TF Serving runs each TFLite interpreter on one thread; parallelism "
              "comes from --num_tflite_pools), so our thread sweep tunes the fp32 SavedModel."]
    return "\n".join(lines)
