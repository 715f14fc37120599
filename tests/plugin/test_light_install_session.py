"""A pytest session without TensorFlow (the light install) measures a server that runs elsewhere, and
stops clearly where it would need TensorFlow (#19).

The session runs in a child interpreter where TensorFlow's packages are made unimportable (None in
``sys.modules``: ``import tensorflow`` fails and ``find_spec`` reports it missing, as in a venv without
the ``[tf]`` extra). The server is the embedded one, started from this environment, which has TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import RunningServer
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.serving.spec import ServerSpec
from tests.plugin.conftest import FAST_ARGS
from tests.unit.plugin_core.test_light_install import TF_INSTALL, WITHOUT_TF

RUN_PYTEST = WITHOUT_TF + "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"
TF_PIP = TF_INSTALL.replace("[", "[[]")  # fnmatch reads [tf] as a character class
LIGHT_ARGS = tuple(arg for arg in FAST_ARGS if not arg.startswith("--tfserving-backend"))

CONFTEST = """
from pathlib import Path
import pytest
from pytest_tfserving import ServerSpec

@pytest.fixture(scope="session")
def tfserving_spec():
    return ServerSpec.single("tiny", Path({base!r}))
"""
TESTS = """
import sys
import pytest

@pytest.mark.perf(max_error_rate=0)
def test_grpc(tfserving_server, perf):
    perf.measure(tfserving_server, protocol="grpc", concurrency=1)
    assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None

def test_variant(tfserving_models, tmp_path):
    tfserving_models.build(tmp_path, name="tiny", variant="int8")
"""


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    """The embedded server, started from this (TensorFlow) environment, serving the tiny model."""
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    root = tmp_path_factory.mktemp("elsewhere")
    export_savedmodel(build_tiny_cnn(), root / "tiny" / "1")
    server = EmbeddedBackend().start(ServerSpec.single("tiny", root / "tiny"), root, 120.0)
    try:
        yield server, root / "tiny"
    finally:
        server.stop()


def _run_light(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, "-c", RUN_PYTEST, "-p", "no:cacheprovider", *args, timeout=300)


def test_light_session_measures_an_external_server(
    pytester: pytest.Pytester, elsewhere: tuple[RunningServer, Path]
) -> None:
    server, base = elsewhere
    pytester.makeconftest(CONFTEST.format(base=str(base)))
    pytester.makepyfile(test_light=TESTS)
    external = (
        "--tfserving-backend=external",
        f"--tfserving-target={server.endpoints.grpc_target}",
        f"--tfserving-rest-url={server.endpoints.rest_url}",
    )

    measured = _run_light(pytester, "-m", "perf", *LIGHT_ARGS, *external)
    measured.assert_outcomes(passed=1)
    measured.stdout.fnmatch_lines(["tfserving: backend external: *", "*test_light.py::test_grpc*"])

    variant = _run_light(pytester, "-k", "variant", *LIGHT_ARGS, *external)
    variant.assert_outcomes(failed=1)
    variant.stdout.fnmatch_lines([
        "_* test_variant _*",
        f"building model variant 'int8' of 'tiny' (tfserving_models.build) needs TensorFlow*{TF_PIP}",
        "=* short test summary info =*",
    ])
    assert "Traceback" not in variant.stdout.str() and "def test_variant" not in variant.stdout.str()


def test_light_session_refuses_the_embedded_backend_at_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_light=TESTS)
    refused = _run_light(pytester, "-m", "perf", *FAST_ARGS)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines([f"ERROR: the embedded backend needs TensorFlow*{TF_PIP}; or serve *"])
    assert "test_light.py" not in refused.stdout.str()  # before any test ran
