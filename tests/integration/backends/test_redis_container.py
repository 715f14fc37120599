"""Redis in a container, where an engine answers and the image is available."""

from __future__ import annotations

import os

import pytest

from pytest_tfserving.backends.engine import engine_status, image_status
from pytest_tfserving.process import cleanup
from pytest_tfserving.services.redis_service import DEFAULT_REDIS_IMAGE, start_redis_container

_engine_ok, _engine_detail = engine_status()
pytestmark = pytest.mark.skipif(not _engine_ok, reason=f"redis container: {_engine_detail}")


# A registry-less engine can point this at a local Redis image (entrypoint + redis-server on PATH).
IMAGE = os.environ.get("PYTEST_TFSERVING_TEST_REDIS_IMAGE", DEFAULT_REDIS_IMAGE)


@pytest.mark.usefixtures("ryuk_or_disabled")
def test_redis_container_set_get_flush_stop() -> None:
    usable, detail = image_status(IMAGE)
    if not usable:
        pytest.skip(f"redis container: {detail}")
    service = start_redis_container(IMAGE)
    try:
        assert service.url.startswith("redis://127.0.0.1:")
        client = service.client()
        client.set("k", b"v")
        assert client.get("k") == b"v"
        assert client.config_get("save") == {"save": ""}
        service.flush()
        assert client.dbsize() == 0
        client.close()
    finally:
        service.stop()
    assert service not in cleanup.registered()
