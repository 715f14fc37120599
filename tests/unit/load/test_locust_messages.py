"""What crosses Locust's messages (msgpack, as Locust encodes them): window records and the run setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.load.locust_engine import LocustOptions
from pytest_tfserving.load.locust_messages import RunSetup, record_from_data, record_to_data
from pytest_tfserving.load.loops import WindowRecord

ROOT = Path(__file__).resolve().parents[3]
msgpack = pytest.importorskip("msgpack", reason="msgpack comes with the [locust] extra")


def _through_locust(data: Any) -> Any:
    """Locust's rpc.protocol.Message encoding, without importing Locust (it monkey-patches on import)."""
    return msgpack.loads(msgpack.dumps(data), raw=False, strict_map_key=False)


def test_a_window_record_arrives_whole() -> None:
    record = WindowRecord(index=3, start_s=3.0, duration_s=1.0, sent=7, late_sends=1, max_send_lag_ms=12.5,
                          max_loop_lag_ms=0.4, loop_cpu=0.3, capped_sends=0)
    for ms in (0.4, 0.5, 2.0, 40.0):
        record.add(ms / 1000.0, True, "OK")
    record.add(0.01, False, "timeout")
    back = record_from_data(_through_locust(record_to_data(record)))
    assert back.histogram.to_dict() == record.histogram.to_dict()
    assert back.histogram.statistics() == record.histogram.statistics()
    back.histogram = record.histogram
    assert back == record


def test_the_setup_keeps_the_pre_serialized_bodies() -> None:
    setup = RunSetup(protocol="grpc", target="127.0.0.1:8500", model_name="m", bodies=(b"\x00\x01", b"\xff"),
                     order=(0, 1, 1), mode="open", users=4, rate=50.0, warmup_s=1.0, window_s=1.0,
                     max_windows=6, timeout_s=10.0, workers=2)
    back = RunSetup.from_data(_through_locust(setup.to_data()))
    assert back == setup
    assert [back.pool().body(i) for i in range(4)] == [b"\x00\x01", b"\xff", b"\xff", b"\x00\x01"]


@pytest.mark.parametrize(
    ("host", "bind"),
    [(None, ("127.0.0.1", 0)), ("0.0.0.0", ("0.0.0.0", 5557)), ("10.0.0.5:6000", ("10.0.0.5", 6000))],
)
def test_master_bind_address(host: str | None, bind: tuple[str, int]) -> None:
    options = LocustOptions(workers=2, master_host=host, expect_workers=3 if host else None)
    assert options.bind() == bind
    assert options.local_workers == (0 if host else 2)
    assert options.expected == (3 if host else 2)


def test_bad_master_host_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="HOST or HOST:PORT"):
        LocustOptions(master_host="host:port").bind()


def test_our_process_never_imports_locust_or_gevent(tmp_path: Path) -> None:
    """Importing Locust monkey-patches the interpreter with gevent: the plugin, the runner and the
    engine's parent side must never do it (only the master and worker processes do)."""
    code = (
        "import sys\n"
        "import pytest_tfserving.plugin, pytest_tfserving.perf.handle, pytest_tfserving.load.locust_engine\n"
        "print(sorted(m for m in ('locust', 'gevent', 'geventhttpclient') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
