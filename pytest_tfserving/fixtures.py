"""The fixtures users get from the plugin: servers, model variants, Redis, and the ``perf`` handle.

Servers are session-scoped and shared by spec; clients and the ``perf`` handle are per test.
Override ``tfserving_spec`` in a conftest.py to choose what the default ``tfserving_server`` serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_tfserving.backends.base import RunningServer
from pytest_tfserving.models.variants import build_model_variant
from pytest_tfserving.options import Settings
from pytest_tfserving.perf.handle import PerfHandle
from pytest_tfserving.perf.progress import Progress, Silent
from pytest_tfserving.report.progress import progress_for
from pytest_tfserving.services.redis_service import RedisService
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec
from pytest_tfserving.session import SESSION_KEY, TfservingSession
from pytest_tfserving.tf_extra import MissingTensorFlow


def _session(config: pytest.Config) -> TfservingSession:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        raise pytest.UsageError(
            "pytest-tfserving is not configured in this run (was it disabled with -p no:?)"
        )
    return session


def plugin_settings(config: pytest.Config) -> Settings | None:
    """The plugin's resolved settings for this run, or None when the plugin is not active (``--help``,
    ``-p no:tfserving``): for conftest hooks that need them before any fixture runs."""
    session = config.stash.get(SESSION_KEY, None)
    return None if session is None else session.settings


class ModelVariants:
    """Builds (or reuses from the content-addressed cache) served variants of a model."""

    def __init__(self, cache_dir: Path, progress: Callable[[str], Progress] | None = None) -> None:
        self.cache_dir = cache_dir
        self._progress = progress or (lambda label: Silent())

    def build(
        self,
        source: Any,
        *,
        name: str,
        variant: str = "fp32",
        version: int = 1,
        representative_dataset: Any = None,
        seed: int = 0,
    ) -> ModelSpec:
        """``source``: a keras.Model or a SavedModel directory. Returns a ModelSpec ready to serve."""
        try:
            return build_model_variant(
                source,
                name=name,
                variant=variant,
                cache_dir=self.cache_dir,
                version=version,
                representative_dataset=representative_dataset,
                seed=seed,
                progress=self._progress(f"tfserving_models {name}@{variant}"),
            )
        except MissingTensorFlow as exc:
            missing = str(exc)
        pytest.fail(missing, pytrace=False)  # a missing install, not a bug: the fix, and no traceback


class ServerFactory(Protocol):
    """The ``tfserving_server_factory`` fixture: a running server for a ServerSpec."""

    def __call__(self, spec: ServerSpec) -> RunningServer: ...


@pytest.fixture(scope="session")
def tfserving_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved plugin settings (CLI > ini > default)."""
    return _session(pytestconfig).settings


@pytest.fixture(scope="session")
def tfserving_models(tfserving_settings: Settings, pytestconfig: pytest.Config) -> ModelVariants:
    """``tfserving_models.build(model, name="resnet", variant="int8")`` -> ModelSpec (cached by content).

    A build (not a reuse) shows its steps in the terminal like a measurement's progress."""
    return ModelVariants(
        tfserving_settings.tfserving_model_cache, lambda label: progress_for(pytestconfig, label)
    )


@pytest.fixture(scope="session")
def tfserving_server_factory(pytestconfig: pytest.Config) -> Iterator[ServerFactory]:
    """``tfserving_server_factory(spec)`` -> a running server for that ServerSpec on the session's backend.

    An identical spec reuses the running server; every server stops when the session ends.
    """
    session = _session(pytestconfig)
    yield session.pool().get
    errors = session.pool().stop_all()
    if errors:
        raise RuntimeError("stopping servers failed: " + "; ".join(map(str, errors)))


@pytest.fixture(scope="session")
def tfserving_spec(tfserving_settings: Settings, tfserving_models: ModelVariants) -> ServerSpec:
    """What the default ``tfserving_server`` serves: from --tfserving-model-name/-base-path (or ini).

    Override this fixture in your conftest.py to serve anything else.
    """
    s = tfserving_settings
    if not (s.tfserving_model_name and s.tfserving_model_base_path):
        raise pytest.UsageError(
            "tfserving_server needs a model: set --tfserving-model-name and --tfserving-model-base-path "
            "(or the ini keys tfserving_model_name / tfserving_model_base_path), or define a "
            "`tfserving_spec` fixture returning a ServerSpec in your conftest.py"
        )
    base_path = Path(s.tfserving_model_base_path)
    if s.tfserving_model_variant == "fp32":
        return ServerSpec.single(s.tfserving_model_name, base_path)
    versions = sorted((p for p in base_path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise pytest.UsageError(f"{base_path} holds no numeric version directory with a SavedModel")
    model = tfserving_models.build(
        versions[-1],
        name=s.tfserving_model_name,
        variant=s.tfserving_model_variant,
        version=int(versions[-1].name),
    )
    return ServerSpec(models=(model,), prefer_tflite_model=True)


@pytest.fixture(scope="session")
def tfserving_server(tfserving_server_factory: ServerFactory, tfserving_spec: ServerSpec) -> RunningServer:
    """The session's default server: ``.endpoints.grpc_target``, ``.endpoints.rest_url``, ``.logs()``."""
    return tfserving_server_factory(tfserving_spec)


@pytest.fixture(scope="session")
def tfserving_redis(pytestconfig: pytest.Config) -> RedisService:
    """A Redis for the session: --redis-url, a local redis-server, or a container (--redis-backend)."""
    return _session(pytestconfig).redis()


@pytest.fixture
def tfserving_redis_client(tfserving_redis: RedisService) -> Iterator[Any]:
    """A redis-py client on an empty database (flushed before each test)."""
    tfserving_redis.flush()
    client = tfserving_redis.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def perf(request: pytest.FixtureRequest) -> PerfHandle:
    """Measure servers (``perf.measure``), compare two (``perf.compare``); judged when the test ends."""
    return _session(request.config).new_handle(request.node)
