"""The environment fingerprint and its comparisons, on this machine and on crafted ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_tfserving.gate.fingerprint import (
    collect_fingerprint,
    compare_fingerprints,
    hardware_key,
    hash_model_dir,
)


def test_collect_on_this_machine(tmp_path: Path) -> None:
    fp = collect_fingerprint(backend="embedded", server="tensorflow 2.21.0",
                             models={"tiny/fp32": "sha256:1"}, server_flags=["--port=1"])
    assert fp["backend"] == "embedded" and fp["server"] == "tensorflow 2.21.0"
    assert isinstance(fp["cpu_model"], str) and fp["cpu_model"]
    assert isinstance(fp["logical_cores"], int) and fp["logical_cores"] >= 1
    assert isinstance(fp["gpus"], list)
    assert hardware_key(fp).startswith(f"cpu={fp['cpu_model']}; cores={fp['logical_cores']}; gpus=")


def test_hardware_key_ignores_software() -> None:
    a: dict[str, Any] = {"cpu_model": "X", "logical_cores": 8, "gpus": [{"name": "NVIDIA H100"}],
                         "server": "tensorflow/serving:2.13.0"}
    b = {**a, "server": "tensorflow/serving:2.14.0", "models": {"m": "sha256:2"}}
    assert hardware_key(a) == hardware_key(b) == "cpu=X; cores=8; gpus=NVIDIA H100"
    assert hardware_key({**a, "gpus": []}) == "cpu=X; cores=8; gpus=none"


def test_compare_lists_readable_differences() -> None:
    a: dict[str, Any] = {"backend": "docker", "server": "tensorflow/serving:2.13.0", "cpu_model": "X",
                         "logical_cores": 8, "gpus": [],
                         "models": {"m/fp32": "sha256:1", "m/int8": "sha256:2"},
                         "server_flags": ["--a=1", "--b=2"]}
    b = {**a, "server": "tensorflow/serving:2.14.0", "logical_cores": 16, "gpus": [{"name": "T4"}],
         "models": {"m/fp32": "sha256:9"}, "server_flags": ["--a=1", "--c=3"]}
    diffs = compare_fingerprints(a, b)
    assert "server: tensorflow/serving:2.13.0 -> tensorflow/serving:2.14.0" in diffs
    assert "logical_cores: 8 -> 16" in diffs
    assert "gpus: none -> T4" in diffs
    assert "model m/fp32: sha256:1 -> sha256:9" in diffs
    assert "model m/int8: sha256:2 -> absent" in diffs
    assert "server_flags: removed ['--b=2'], added ['--c=3']" in diffs
    assert compare_fingerprints(a, dict(a)) == []


def test_model_hash_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "1" / "variables").mkdir(parents=True)
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "1" / "variables" / "v.data").write_bytes(b"weights")
    first = hash_model_dir(tmp_path / "1")
    assert first == hash_model_dir(tmp_path / "1") and first.startswith("sha256:")
    (tmp_path / "1" / "variables" / "v.data").write_bytes(b"weightz")
    assert hash_model_dir(tmp_path / "1") != first
    single = tmp_path / "model.tflite"
    single.write_bytes(b"tflite")
    assert hash_model_dir(single).startswith("sha256:")
