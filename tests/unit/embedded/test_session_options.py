"""Session options the server builds from its flags, in upstream's order: the session config file,
then the GPU memory fraction and thread counts from their flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tfserving.embedded.flags import parse_flags
from pytest_tfserving.embedded.settings import SettingsError, _session_config


def test_gpu_fraction_and_session_config_file(tmp_path: Path) -> None:
    config = tmp_path / "session.config"
    config.write_text("allow_soft_placement: true\ninter_op_parallelism_threads: 9\n")
    flags = parse_flags(
        [
            "--model_base_path=/m",
            "--per_process_gpu_memory_fraction=0.3",
            f"--tensorflow_session_config_file={config}",
            "--tensorflow_inter_op_parallelism=2",
        ]
    )
    session = _session_config(flags)
    assert session.gpu_options.per_process_gpu_memory_fraction == pytest.approx(0.3)
    assert session.allow_soft_placement  # from the file
    assert session.inter_op_parallelism_threads == 2  # the flag wins over the file


def test_unreadable_session_config_file_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "bad.config").write_text("no_such_field: 1\n")
    flags = parse_flags(
        ["--model_base_path=/m", f"--tensorflow_session_config_file={tmp_path / 'bad.config'}"]
    )
    with pytest.raises(SettingsError, match="Invalid protobuf file"):
        _session_config(flags)
