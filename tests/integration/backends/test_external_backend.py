"""The external backend against a server we started ourselves (the embedded one) as 'somebody else's'."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import BackendError, ServerCrashed
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.external import ExternalBackend
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec


def test_external_checks_readiness_and_never_stops_the_server(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = ServerSpec(models=(ModelSpec("tiny", tiny_model_dir),))
    owned = EmbeddedBackend().start(spec, tmp_path, 120.0)
    try:
        backend = ExternalBackend(owned.endpoints.grpc_target, owned.endpoints.rest_url + "/")
        external = backend.start(spec, tmp_path, 10.0)
        assert external.endpoints.rest_url == owned.endpoints.rest_url
        assert external.endpoints.prometheus_url == owned.endpoints.prometheus_url
        external.check_alive()
        sample = external.resource_sampler().sample()
        assert math.isnan(sample.cpu_percent) and math.isnan(sample.rss_mb)
        external.stop()
        owned.check_alive()  # still running: stop() of an external server does nothing

        wrong = ServerSpec(models=(ModelSpec("not-served", tiny_model_dir),))
        with pytest.raises(BackendError, match="not-served"):
            backend.start(wrong, tmp_path, 1.0)
    finally:
        owned.stop()
    with pytest.raises(ServerCrashed, match="no longer reports"):
        external.check_alive()
