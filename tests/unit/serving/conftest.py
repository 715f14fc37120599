"""Compile the test-only copies of TF Serving's .proto files once, with grpc_tools.protoc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.module_loading import load_module

PROTO_ROOT = Path(__file__).resolve().parents[2] / "data" / "protos"
BATCHING_PROTO = "tensorflow_serving/servables/tensorflow/session_bundle_config.proto"
MONITORING_PROTO = "tensorflow_serving/config/monitoring_config.proto"


@pytest.fixture(scope="session")
def real_protos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleType]:
    """The upstream schemas compiled by protoc (not our runtime descriptors): the grammar to check."""
    import grpc_tools

    out = tmp_path_factory.mktemp("compiled_protos")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    # In a child process: protoc's C++ protobuf crashes once TensorFlow's is loaded in this one.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            BATCHING_PROTO,
            MONITORING_PROTO,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"protoc failed on tests/data/protos: {done.stderr}"
    return {
        "batching": load_module(out / BATCHING_PROTO.replace(".proto", "_pb2.py"),
                                "_tfs_test_batching_pb2"),
        "monitoring": load_module(out / MONITORING_PROTO.replace(".proto", "_pb2.py"),
                                  "_tfs_test_monitoring_pb2"),
    }
