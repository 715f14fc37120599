"""The Redis stand-in through testcontainers' RedisContainer (no password: the image's default
command; with a password: RedisContainer's own `redis-server --requirepass ...`)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tfserving.images.recipe import ImageRefs
from tests.containers.standin_helpers import labels


@pytest.mark.parametrize("password", [None, "s3cret"])
def test_redis_container_with_standin_image(engine: Any, standin: ImageRefs, password: str | None) -> None:
    from testcontainers.community.redis import RedisContainer

    container = RedisContainer(image=standin.redis, password=password)
    container.ports["6379"] = ("127.0.0.1", None)  # type: ignore[assignment]
    container.with_kwargs(labels=labels())
    with container:
        client = container.get_client()
        client.set("key", b"value")
        assert client.get("key") == b"value"
        assert client.incr("counter") == 1
        info = client.info("server")
        assert str(info["redis_version"]).startswith("7.")
        bindings = container.get_wrapped_container().attrs["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for v in bindings.values() for b in v} == {"127.0.0.1"}
        client.close()


def test_pytest_tfserving_redis_service_on_standin(engine: Any, standin: ImageRefs) -> None:
    from pytest_tfserving.services.redis_service import start_redis_container

    service = start_redis_container(standin.redis)
    try:
        client = service.client()
        client.set("k", b"v")
        assert client.get("k") == b"v"
        assert client.config_get("save") == {"save": ""}
        client.close()
    finally:
        service.stop()
