"""Which versions of which models are loaded: TF Serving's version policies and filesystem polling.

Every ``file_system_poll_wait_seconds`` the base paths are scanned for version directories (``versions``);
versions the policy wants are loaded before versions it no longer wants are unloaded (TF Serving's
availability-preserving policy), so a new version directory takes over without a gap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_tfserving.embedded.errors import invalid, not_found
from pytest_tfserving.embedded.versions import aspired_versions
from pytest_tfserving.serving.spec import VersionPolicy

if TYPE_CHECKING:
    from pytest_tfserving.embedded.batching import Batcher
    from pytest_tfserving.embedded.servables import Servable

log = logging.getLogger("pytest_tfserving.embedded")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    base_path: Path
    policy: VersionPolicy = field(default_factory=VersionPolicy)


@dataclass
class Loaded:
    """A servable plus its batching queue, if batching is on."""

    servable: Servable
    batcher: Batcher | None = None
    _in_flight: int = 0
    _drained: threading.Condition = field(default_factory=threading.Condition)

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._drained:
            self._in_flight += 1
        try:
            if self.batcher is not None:
                return self.batcher.submit(signature, inputs)
            return self.servable.run(signature, inputs)
        finally:
            with self._drained:
                self._in_flight -= 1
                self._drained.notify_all()

    def close(self, drain_s: float = 30.0) -> None:
        """Unload: requests already running on this version finish first (as TF Serving holds a
        servable until its handles are released), then the batcher and the servable stop."""
        with self._drained:
            self._drained.wait_for(lambda: self._in_flight == 0, timeout=drain_s)
        if self.batcher is not None:
            self.batcher.stop()
        self.servable.close()


Loader = Callable[[ModelEntry, int, Path], Loaded]


def requested_version(spec: Any) -> int | None:
    """The version a request's ModelSpec names (None: the latest); labels are not served here."""
    if spec.HasField("version"):
        return int(spec.version.value)
    if spec.version_label:
        raise invalid(f"Unrecognized servable version label: {spec.version_label}")
    return None


@dataclass
class _Model:
    entry: ModelEntry
    versions: dict[int, Loaded] = field(default_factory=dict)


class ModelManager:
    """Thread-safe lookup of loaded versions; ``poll()`` loads and unloads to follow the disk,
    ``set_models()`` follows a new model list (config reload)."""

    def __init__(self, entries: list[ModelEntry], loader: Loader) -> None:
        self._models = {e.name: _Model(e) for e in entries}
        self._loader = loader
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._failed: dict[tuple[str, int], str] = {}

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def all_available(self) -> bool:
        with self._lock:
            return all(model.versions for model in self._models.values())

    def available(self, name: str) -> bool:
        with self._lock:
            model = self._models.get(name)
            return model is not None and bool(model.versions)

    def failures(self, name: str) -> dict[int, str]:
        """Versions of ``name`` whose load failed (they are not retried), with the error."""
        with self._lock:
            return {v: err for (n, v), err in self._failed.items() if n == name}

    def set_models(self, entries: list[ModelEntry]) -> None:
        """Serve exactly ``entries`` from now on: models no longer listed are unloaded, new ones are
        added (the next ``poll`` loads them), a listed model keeps its loaded versions (upstream keys
        a servable by name and version, so a new base path alone reloads nothing)."""
        with self._poll_lock:
            with self._lock:
                dropped = [m for name, m in self._models.items() if name not in {e.name for e in entries}]
                current = self._models
                self._models = {}
                for entry in entries:
                    model = current.get(entry.name)
                    if model is None:
                        self._models[entry.name] = _Model(entry)
                    else:
                        model.entry = entry
                        self._models[entry.name] = model
                for model in dropped:
                    self._failed = {k: v for k, v in self._failed.items() if k[0] != model.entry.name}
            for model in dropped:
                self._unload(model, list(model.versions))

    def poll(self) -> None:
        """One filesystem scan: load new aspired versions, then unload unaspired ones."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._poll_model(model)

    def _poll_model(self, model: _Model) -> None:
        entry = model.entry
        if not entry.base_path.exists():
            log.error(
                "Could not find base path %s for servable %s with error NOT_FOUND",
                entry.base_path,
                entry.name,
            )
            return
        wanted = aspired_versions(entry.policy, entry.base_path, entry.name)
        for version, path in wanted.items():
            if version in model.versions or (entry.name, version) in self._failed:
                continue
            try:
                loaded = self._loader(entry, version, path)
            except Exception as exc:
                with self._lock:
                    self._failed[(entry.name, version)] = str(exc)
                log.error("Loading servable: {name: %s version: %d} failed: %s", entry.name, version, exc)
                continue
            with self._lock:
                model.versions[version] = loaded
            log.info("Successfully loaded servable version {name: %s version: %d}", entry.name, version)
        if not any(v in model.versions for v in wanted):
            return  # availability preserving: keep the old ones until a wanted one is up
        self._unload(model, [v for v in model.versions if v not in wanted])

    def _unload(self, model: _Model, versions: list[int]) -> None:
        with self._lock:
            removed = [(v, model.versions.pop(v)) for v in versions if v in model.versions]
        for version, loaded in removed:
            loaded.close()
            log.info("Unloaded servable version {name: %s version: %d}", model.entry.name, version)

    def get(self, name: str, version: int | None) -> Loaded:
        """The servable a request names; NOT_FOUND with TF Serving's messages otherwise."""
        if not name:
            raise invalid("ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
                raise not_found(f"Servable not found for request: {what}")
            if version is None:
                return model.versions[max(model.versions)]
            found = model.versions.get(version)
            if found is None:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return found

    def version_states(self, name: str, version: int | None) -> list[int]:
        """Loaded versions (newest first) for GetModelStatus; NOT_FOUND as upstream."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                raise not_found(f"Could not find any versions of model {name}")
            if version is not None:
                if version not in model.versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [version]
            return sorted(model.versions, reverse=True)

    def close(self) -> None:
        with self._lock:
            loaded = [v for model in self._models.values() for v in model.versions.values()]
            for model in self._models.values():
                model.versions.clear()
        for item in loaded:
            item.close()
