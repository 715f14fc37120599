"""What the gate knows about each server it measured: its fingerprint, its models' content hashes,
its deployment record, and (--ab-baseline) the baseline's own deployment to serve beside it.

Computed once per running server (hashing a model directory is not free). No pytest imports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tfserving.backends.base import RunningServer
from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.deployments import (
    DeploymentStore,
    ReferenceUnavailable,
    deployment_record,
    plan_reference,
    record_digests,
)
from pytest_tfserving.gate.fingerprint import collect_fingerprint, hash_model_dir, spec_flags
from pytest_tfserving.options import Settings
from pytest_tfserving.services.server_pool import ServerPool


def server_build(server: RunningServer) -> str:
    """The server software that served, as exactly as this machine can tell: the backend's
    description (embedded: TF version; binary: ``--version``; docker: the image reference), and for a
    container the id of the image it ran, since a tag can be pushed again with other contents."""
    image_id = _container_image_id(server)
    return f"{server.description} (image {image_id})" if image_id else server.description


def _container_image_id(server: RunningServer) -> str | None:
    """``sha256:<12 hex>`` of a docker backend's image; None for other backends or when the engine
    does not answer (the description alone then names the build)."""
    container = getattr(server, "container", None)
    if container is None:
        return None
    with contextlib.suppress(Exception):
        image = container.get_wrapped_container().attrs.get("Image")
        if isinstance(image, str) and image:
            return image[:19]
    return None


@dataclass(frozen=True)
class BesideServers:
    """--ab-baseline's servers: the baseline's deployment and the test's, ``replicas`` processes of
    each (--ab-replicas); ``current[0]`` is the test's own server."""

    reference: tuple[RunningServer, ...]
    current: tuple[RunningServer, ...]

    @property
    def replicas(self) -> int:
        return len(self.reference)


class MeasuredServers:
    """Fingerprints and deployments of the session's servers; ``backend_name`` and ``pool`` are asked
    lazily, so nothing starts before a server is measured."""

    def __init__(
        self, settings: Settings, backend_name: Callable[[], str], pool: Callable[[], ServerPool]
    ) -> None:
        self.settings = settings
        self._backend_name = backend_name
        self._pool = pool
        self._fingerprints: dict[int, dict[str, Any]] = {}
        self._server_digests: dict[int, dict[str, str]] = {}
        self._model_paths: dict[str, Path] = {}  # content hash -> model base path measured

    def fingerprint(self, server: RunningServer) -> dict[str, Any]:
        key = id(server)
        if key not in self._fingerprints:
            digests = self._digests(server)
            models = {
                f"{m.name}/{m.variant}": digests[m.name] for m in server.spec.models if m.name in digests
            }
            self._fingerprints[key] = collect_fingerprint(
                backend=self._backend_name(),
                server=server.description,
                server_build=server_build(server),
                models=models,
                server_flags=spec_flags(server.spec),
            )
        return self._fingerprints[key]

    def _digests(self, server: RunningServer) -> dict[str, str]:
        """Model name -> content hash for the server's models on this machine, once per server."""
        key = id(server)
        if key not in self._server_digests:
            digests = {}
            for model in server.spec.models:
                path = Path(model.base_path)
                if path.exists():
                    digests[model.name] = hash_model_dir(path)
                    self._model_paths[digests[model.name]] = path
            self._server_digests[key] = digests
        return self._server_digests[key]

    def deployment(self, server: RunningServer) -> dict[str, Any] | None:
        """The server's deployment record (None when a model directory is not on this machine)."""
        digests = self._digests(server)
        if len(digests) < len(server.spec.models):
            return None
        return deployment_record(server.spec, digests)

    @property
    def concurrent_servers(self) -> int:
        """How many servers of one test run at once: ``2 x --ab-replicas`` under --ab-baseline (the
        baseline's deployment and the test's, that many processes each), else 1. What GPU memory
        fractions must be shared by."""
        if self.settings.ab_baseline and not self.settings.update_baselines:
            return 2 * self.settings.ab_replicas
        return 1

    def reference_server(
        self, baseline: Baseline | None, server: RunningServer, replicas: int | None = None
    ) -> tuple[BesideServers | None, str | None]:
        """For --ab-baseline: the baseline's own deployment, ``replicas`` processes of it (default
        ``--ab-replicas``), and as many of the test's (``server`` and further processes of its spec),
        all running; or None and the reason. Those not running yet start side by side; the pool
        stops them at session end."""
        if not self.settings.ab_baseline or self.settings.update_baselines or baseline is None:
            return None, None
        if self._backend_name() == "external":
            return None, "the external backend cannot start the baseline's deployment"
        try:
            spec = plan_reference(
                baseline.deployment,
                baseline.fingerprint,
                self.deployment(server),
                self.fingerprint(server),
                DeploymentStore(self.settings.deployment_store),
            )
        except ReferenceUnavailable as why:
            return None, str(why)
        m = self.settings.ab_replicas if replicas is None else replicas
        keys = [(spec, r) for r in range(m)] + [(server.spec, r) for r in range(1, m)]
        started = self._pool().ensure(keys)
        return BesideServers(tuple(started[:m]), (server, *started[m:])), None

    def store_deployment(self, record: dict[str, Any] | None) -> None:
        """Copy the models of a recorded deployment into the store (once per content hash)."""
        if record is None:
            return
        store = DeploymentStore(self.settings.deployment_store)
        for digest in record_digests(record).values():
            store.put(self._model_paths[digest], digest)
