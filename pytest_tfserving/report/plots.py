"""PNG plots: latency distribution of the current run against its baseline, one file per test.

matplotlib is an optional extra; it is imported only when a plot is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_tfserving.gate.baselines import baseline_filename
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.report.records import TestRecord


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib: pip install pytest-tfserving[plots] ({exc})") from exc
    matplotlib.use("Agg", force=False)  # no display needed; keeps CI and xdist workers headless
    import matplotlib.pyplot as plt

    return plt


Series = tuple[str, list[float], list[float]]  # kind, values in ms, weights


def _window_p50s(m: Measurement) -> Series | None:
    p50s = m.window_values("p50_ms")
    return ("window p50", p50s, [1.0] * len(p50s)) if p50s else None


def _distribution(m: Measurement) -> Series | None:
    """(kind, values in ms, weights): the latency histogram when present, else the window p50s."""
    if m.latency_histogram:
        try:
            from pytest_tfserving.load.histogram import Histogram

            values, counts = Histogram.from_dict(m.latency_histogram).bucket_values()
            if values.size:
                return "latency", [float(v) for v in values], [float(c) for c in counts]
        except (ImportError, KeyError, TypeError, ValueError):
            pass  # an unreadable histogram still leaves the window p50s to show
    return _window_p50s(m)


def plot_record(record: TestRecord, path: Path | str) -> Path | None:
    """Write one PNG for ``record``; None when it has no measurement to draw."""
    if record.measurement is None:
        return None
    plt = _pyplot()
    runs = [("current", record.measurement)]
    if record.baseline is not None:
        runs.insert(0, ("baseline", record.baseline.measurement))
    series = [(label, s) for label, m in runs if (s := _distribution(m)) is not None]
    kind = "latency" if series and all(s[0] == "latency" for _, s in series) else "window p50"
    if kind == "window p50":  # a histogram on one side only: compare like with like
        series = [(label, s) for label, m in runs if (s := _window_p50s(m)) is not None]
    if not series:
        return None
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        all_values = [v for _, (_, vals, _) in series for v in vals]
        low, high = max(min(all_values) * 0.9, 1e-3), max(all_values) * 1.1
        bins = np.geomspace(low, high, 60) if high / low > 3 else np.linspace(low, high, 40)
        colors = {"baseline": "tab:gray", "current": "tab:blue"}
        for label, (_, vals, weights) in series:
            total = sum(weights)
            ax.hist(
                vals,
                bins=bins,
                weights=[w / total for w in weights],
                histtype="step",
                linewidth=1.8,
                label=f"{label} (n={int(total)})",
                color=colors[label],
            )
        if high / low > 3:
            ax.set_xscale("log")
        ax.set_xlabel("latency (ms)" if kind == "latency" else "p50 of each window (ms)")
        ax.set_ylabel("fraction of requests" if kind == "latency" else "fraction of windows")
        ax.set_title(record.nodeid if len(record.nodeid) <= 80 else "…" + record.nodeid[-79:], fontsize=9)
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def plot_records(records: Iterable[TestRecord], directory: Path | str) -> list[Path]:
    """One PNG per record that has a measurement, named like its baseline file."""
    out = []
    for record in records:
        name = baseline_filename(record.nodeid).removesuffix(".json") + ".png"
        written = plot_record(record, Path(directory) / name)
        if written is not None:
            out.append(written)
    return out
