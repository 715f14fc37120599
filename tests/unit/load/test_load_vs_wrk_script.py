"""benchmarks/load_vs_wrk.py without wrk: it stops at once and says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.module_loading import BENCHMARKS


def test_missing_wrk_names_the_install_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "load_vs_wrk.py"), "--rounds", "1"],
        env={"PATH": str(tmp_path)},  # an empty directory: no wrk, whatever this machine has
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert done.returncode == 2
    assert "sudo apt-get install wrk" in done.stderr
    assert done.stdout == ""  # nothing started: no model export, no server
