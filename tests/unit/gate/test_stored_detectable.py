"""benchmarks/stored_detectable.py: the figures docs/GATE.md quotes come from the plugin's own judge,
pooled as a session pools; a pooled figure is smaller than the alone one for agreeing runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_tfserving.gate.baselines import write_baseline
from pytest_tfserving.gate.run_drift import pool_histories
from tests.module_loading import load_benchmark
from tests.unit.gate.gate_factories import FINGERPRINT, build_measurement

bench = load_benchmark("stored_detectable")


def test_prints_pooled_and_alone_figures_and_the_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    histories = [[2.0, 2.0, 2.0, 2.0, 2.0]] + [[2.0, 2.1, 1.9, 2.05, 1.95]] * 9
    for i, runs in enumerate(histories):
        path = tmp_path / f"t{i}.json"
        write_baseline(path, f"t.py::test_{i}", build_measurement([2.0] * 8), FINGERPRINT)
        data = json.loads(path.read_text())
        data["runs"] = [{"created": f"run {k}", "values": {"p50_ms": v, "rps": 1000 / v}}
                        for k, v in enumerate(runs)]
        path.write_text(json.dumps(data))
    assert bench.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = r"\| t\.py::test_0 \| 5 \| (\w+) \| p50_ms \+(\d+)%"
    first = {m.group(1): int(m.group(2)) for m in re.finditer(row, out)}
    assert first["pooled"] < first["alone"], out
    pool = pool_histories(histories)
    assert pool is not None
    assert re.search(rf"\| p50_ms \| {pool.sd:.4f} \| 40 \| 10 \| 0 \|", out), out
