"""The light install (no ``[tf]`` extra): what it must do without TensorFlow, and what must say so.

Each check runs in a fresh interpreter. "Without TensorFlow" is made real there by putting None in
``sys.modules`` for TensorFlow's packages: every ``import tensorflow`` then fails as it does when the
package is not installed, and ``importlib.util.find_spec`` reports it missing, as in a TF-free venv.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TF_PACKAGES = ("tensorflow", "tensorflow_serving", "keras", "tf_keras", "ai_edge_litert", "flatbuffers")
WITHOUT_TF = f"import sys\nfor _name in {TF_PACKAGES!r}:\n    sys.modules[_name] = None\n"
TF_INSTALL = "pip install 'pytest-tfserving[tf]'"

# What a docker, binary or external session loads: the plugin and everything its perf tests run.
LIGHT_MODULES = (
    "pytest_tfserving.plugin",
    "pytest_tfserving.fixtures",
    "pytest_tfserving.session",
    "pytest_tfserving.backends.selection",
    "pytest_tfserving.backends.docker",
    "pytest_tfserving.backends.binary",
    "pytest_tfserving.backends.external",
    "pytest_tfserving.serving.render",
    "pytest_tfserving.load.runner",
    "pytest_tfserving.load.clients",
    "pytest_tfserving.load.payloads",
    "pytest_tfserving.perf.handle",
    "pytest_tfserving.gate.judge",
    "pytest_tfserving.gate.baselines",
    "pytest_tfserving.report.reporter",
    "pytest_tfserving.report.markdown",
    "pytest_tfserving.report.json_report",
    "pytest_tfserving.services.redis_service",
    "pytest_tfserving.services.prediction_cache",
)


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120
    )


def test_light_modules_import_no_tensorflow(tmp_path: Path) -> None:
    """With TensorFlow installed (this venv), loading them still must not import it: seconds and
    hundreds of MB in every pytest process, for nothing."""
    code = f"import importlib, sys\nfor m in {LIGHT_MODULES!r}:\n    importlib.import_module(m)\n"
    code += f"print(sorted(m for m in {TF_PACKAGES!r} if m in sys.modules))\n"
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_light_modules_work_without_tensorflow(tmp_path: Path) -> None:
    """Every module outside the embedded server imports, and a docker server's config files render."""
    code = WITHOUT_TF + textwrap.dedent(
        """
        import importlib, pkgutil
        from pathlib import Path
        import pytest_tfserving
        LOCUST_PROCESS_MODULES = ("pytest_tfserving.load.locust_user", "pytest_tfserving.load.locust_driver")
        failed = []
        for info in pkgutil.walk_packages(pytest_tfserving.__path__, "pytest_tfserving."):
            if info.name.startswith("pytest_tfserving.embedded") or info.name.endswith("__main__"):
                continue
            if info.name in LOCUST_PROCESS_MODULES:
                continue  # run only inside Locust's processes ([locust] extra); importing patches gevent in
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                failed.append(f"{info.name}: {exc}")
        print("failed:", failed)

        from pytest_tfserving.serving.configs import parse_model_config
        from pytest_tfserving.serving.render import ServerLayout, render_server
        from pytest_tfserving.serving.spec import BatchingSpec, ModelSpec, ServerSpec
        spec = ServerSpec(models=(ModelSpec("m", Path("/host/m")),), enable_batching=True,
                          batching=BatchingSpec(max_batch_size=8))
        layout = ServerLayout(grpc_port=8500, rest_port=8501, config_dir="/config",
                              model_path=lambda model: "/models/" + model.name)
        rendered = render_server(spec, layout)
        print("entries:", parse_model_config(rendered.files["models.config"]))
        """
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "failed: []" in done.stdout
    assert "entries: [ModelConfigEntry(name='m', base_path='/models/m'" in done.stdout


def test_tensorflow_features_name_the_extra(tmp_path: Path) -> None:
    code = WITHOUT_TF + textwrap.dedent(
        """
        from pathlib import Path
        from pytest_tfserving.backends.base import BackendError
        from pytest_tfserving.backends.selection import select_backend
        from pytest_tfserving.models.variants import build_model_variant
        from pytest_tfserving.serving.spec import ServerSpec
        from pytest_tfserving.tf_extra import MissingTensorFlow

        try:
            select_backend("embedded", image=None, binary=None)
        except BackendError as exc:
            print("embedded:", exc)
        backend, reason = select_backend("auto", image=None, binary="/nonexistent/tensorflow_model_server",
                                         engine_timeout_s=0.5)
        print("auto:", backend.name, "|", reason)
        try:
            backend.start(ServerSpec.single("m", Path(".")), Path("."), 1.0)
        except BackendError as exc:
            print("auto start:", exc)
        try:
            build_model_variant(Path("."), name="m", variant="int8", cache_dir=Path("cache"))
        except MissingTensorFlow as exc:
            print("build:", exc)
        print("external:", select_backend("external", image=None, binary=None,
                                          external_grpc="localhost:1", external_rest="localhost:2")[1])
        """
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["embedded"].startswith("the embedded backend needs TensorFlow")
    assert TF_INSTALL in lines["embedded"] and "--tfserving-backend=docker" in lines["embedded"]
    assert lines["auto"].startswith("unavailable | unavailable: auto found no server to start")
    assert TF_INSTALL in lines["auto start"]
    assert lines["build"].startswith("building model variant 'int8' of 'm'") and TF_INSTALL in lines["build"]
    assert lines["external"].startswith("external: http://localhost:2")
    assert not (tmp_path / "cache").exists()  # refused before anything was written


def test_embedded_server_entry_point_names_the_extra(tmp_path: Path) -> None:
    code = WITHOUT_TF + "import runpy\nrunpy.run_module('pytest_tfserving.embedded', run_name='__main__')\n"
    done = _run(code, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the embedded server needs TensorFlow, which this environment lacks "
        f"(no module tensorflow, tensorflow_serving); install the [tf] extra: {TF_INSTALL}"
    )


@pytest.mark.parametrize("modules", [(), ("tensorflow",)])
def test_with_tensorflow_nothing_is_missing(modules: tuple[str, ...]) -> None:
    from pytest_tfserving.tf_extra import require_tf_extra, tf_extra_problem

    assert tf_extra_problem("x", modules or ("tensorflow", "tensorflow_serving")) is None
    require_tf_extra("x")
