"""The deployment a baseline was recorded on, kept so it can be served again next to a PR's.

A stored number cannot gate a 10 % change on a machine whose speed drifts by 25 % between runs
(docs/GATE.md). The baseline's own deployment, served beside the PR's and measured in interleaved
windows, can: both sides see the same drift. For that a baseline records its deployment (the
ServerSpec, with each model named by its content hash) and ``--update-baselines`` copies the model
directories into a content-addressed store (``--deployment-store``), from which a later session
rebuilds the reference server. The store lives on a persistent runner where a pull request's code
runs too, so every read hashes the entry again: a rewritten entry is an error, never served. No
pytest here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_tfserving.gate.fingerprint import hash_model_dir
from pytest_tfserving.models.hashing import hash_directory
from pytest_tfserving.serving.fields import RecordKind, spec_field
from pytest_tfserving.serving.spec import BatchingSpec, ModelSpec, ServerSpec, VersionPolicy

RECORD_VERSION = 1


class ReferenceUnavailable(RuntimeError):
    """The baseline's deployment cannot be served again here; the message says why and the fix."""


class StoreEntryChanged(RuntimeError):
    """A store entry no longer holds the model its name promises. Not a ReferenceUnavailable on
    purpose: the session must not shrug and fall back, someone rewrote the store."""


def deployment_record(spec: ServerSpec, model_digests: Mapping[str, str]) -> dict[str, Any]:
    """A JSON-safe description of ``spec`` where each model's path is replaced by its content hash.

    ``model_digests`` maps model name -> ``hash_model_dir`` of its base path. Each field is written
    as its ``serving.fields`` row says (``record``).
    """
    fields = {
        item.name: _to_record(spec_field(item.name).record, getattr(spec, item.name), model_digests)
        for item in dataclasses.fields(spec)
    }
    return {"record_version": RECORD_VERSION, "spec": _listify(fields)}


def _to_record(kind: RecordKind, value: Any, model_digests: Mapping[str, str]) -> Any:
    """One ServerSpec setting as the record keeps it; ``_from_record`` reads it back."""
    if kind == "models":
        return [
            {
                "name": m.name,
                "variant": m.variant,
                "version_policy": dataclasses.asdict(m.version_policy),
                "digest": model_digests[m.name],
            }
            for m in value
        ]
    if kind == "batching" and value is not None:
        return dataclasses.asdict(value)
    return value  # "value"; a "tuple" becomes a list in _listify


def _listify(value: Any) -> Any:
    """Tuples become lists, recursively, so a record equals its own JSON round trip."""
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


def record_digests(record: Mapping[str, Any]) -> dict[str, str]:
    """Model name -> content hash, from a deployment record."""
    return {m["name"]: m["digest"] for m in record["spec"]["models"]}


class DeploymentStore:
    """Model directories by content hash: ``ROOT/<hash>/`` holds a copy of the model's base path."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _entry(self, digest: str) -> Path:
        algorithm, _, value = digest.partition(":")
        if not value or not value.isalnum() or not algorithm.isalnum():
            raise ValueError(f"model digest {digest!r} is not of the form 'sha256:<hex>'")
        return self.root / f"{algorithm}-{value}"

    def put(self, base_path: Path | str, digest: str) -> Path:
        """Copy ``base_path`` in under ``digest`` (once; atomic rename). The copy is hashed again
        before it is published, so an entry always holds what its name says; an existing entry that
        does not (rewritten since) is replaced by the verified copy."""
        entry = self._entry(digest)
        if entry.is_dir():
            if _holds(entry, digest):
                return entry
            self._discard(entry)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            copy = staging / "model"
            shutil.copytree(base_path, copy, symlinks=False)
            found = hash_model_dir(copy)
            if found != digest:
                raise ReferenceUnavailable(
                    f"{base_path} changed while it was copied to the deployment store "
                    f"(hash {found}, expected {digest}); run --update-baselines again"
                )
            try:
                os.rename(copy, entry)
            except OSError:
                if not entry.is_dir():  # another session published the same entry first: fine
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry

    def get(self, digest: str) -> Path | None:
        """The stored copy of ``digest`` after hashing it again, or None when the store does not
        hold it. Raises StoreEntryChanged, naming the entry and the fix, when its content no longer
        matches ``digest``."""
        entry = self._entry(digest)
        if not entry.is_dir():
            return None
        if not _holds(entry, digest):
            raise StoreEntryChanged(
                f"deployment store entry {entry} no longer holds model {digest}: its content hashes to "
                f"{hash_model_dir(entry) if _has_files(entry) else 'nothing (it is empty)'}. It was "
                "changed after it was recorded (code a pull request ran on this runner can write the "
                "store), so it is not served. Delete it and record the baseline's deployment again "
                f"on the base branch: rm -r {entry} && pytest --update-baselines ..."
            )
        return entry

    def _discard(self, entry: Path) -> None:
        """Take ``entry`` out of the store at once (rename), then delete it."""
        doomed = Path(tempfile.mkdtemp(prefix=".discard-", dir=self.root)) / "entry"
        os.rename(entry, doomed)
        shutil.rmtree(doomed.parent, ignore_errors=True)


def _has_files(path: Path) -> bool:
    return any(p.is_file() for p in path.rglob("*"))


def _holds(entry: Path, digest: str) -> bool:
    """Whether ``entry`` hashes to ``digest``: its model identity, or (entries recorded before
    identities) the sha256 of its bytes, the name those entries were given."""
    if not _has_files(entry):
        return False
    return digest in (hash_model_dir(entry), "sha256:" + hash_directory(entry)[:16])


def reference_spec(record: Mapping[str, Any], store: DeploymentStore) -> ServerSpec:
    """The ServerSpec a deployment record describes, serving the models from ``store``.

    Raises ReferenceUnavailable naming what is missing (a model not in the store, a newer record).
    """
    version = record.get("record_version")
    if version != RECORD_VERSION:
        raise ReferenceUnavailable(
            f"the baseline's deployment record has version {version!r}; this plugin reads "
            f"{RECORD_VERSION} (upgrade pytest-tfserving or record the baseline again)"
        )
    fields = dict(record["spec"])
    # In ServerSpec's order, models first: a model missing from the store is the error to report.
    settings = {
        item.name: _from_record(spec_field(item.name).record, fields.pop(item.name), store)
        for item in dataclasses.fields(ServerSpec)
        if item.name in fields
    }
    if fields:
        raise ReferenceUnavailable(
            f"the baseline's deployment sets {', '.join(sorted(fields))}, which this plugin's ServerSpec "
            "lacks (upgrade pytest-tfserving)"
        )
    return ServerSpec(**settings)


def _from_record(kind: RecordKind, value: Any, store: DeploymentStore) -> Any:
    """One setting of a deployment record as ServerSpec holds it: the inverse of ``_to_record``."""
    if kind == "models":
        return _models_from_record(value, store)
    if kind == "tuple":
        return tuple(value)
    if kind == "batching" and value is not None:
        return BatchingSpec(**{**value, "allowed_batch_sizes": tuple(value["allowed_batch_sizes"])})
    return value


def _models_from_record(models: list[Mapping[str, Any]], store: DeploymentStore) -> tuple[ModelSpec, ...]:
    """The record's models, each served from its copy in ``store``."""
    rebuilt = []
    for model in models:
        path = store.get(model["digest"])
        if path is None:
            raise ReferenceUnavailable(
                f"model {model['name']!r} ({model['digest']}) of the baseline's deployment is not in "
                f"the deployment store {store.root}; run --update-baselines on the base branch on this "
                "runner (or point --deployment-store at a store that has it)"
            )
        rebuilt.append(
            ModelSpec(
                name=model["name"],
                base_path=path,
                variant=model["variant"],
                version_policy=VersionPolicy(
                    kind=model["version_policy"]["kind"],
                    num_versions=model["version_policy"]["num_versions"],
                    versions=tuple(model["version_policy"]["versions"]),
                ),
            )
        )
    return tuple(rebuilt)


def plan_reference(
    baseline_record: Mapping[str, Any] | None,
    baseline_fingerprint: Mapping[str, Any],
    current_record: Mapping[str, Any] | None,
    current_fingerprint: Mapping[str, Any],
    store: DeploymentStore,
) -> ServerSpec:
    """The spec to serve beside the current deployment, or ReferenceUnavailable saying why not.

    The reference must run on the same server software as the current one (the session's backend
    serves both). Across backends or server builds the caller falls back to the stored runs, which
    come from other server software: the fingerprint marks that comparison incomparable, so the
    reason given says so and how to get a comparison.
    """
    if baseline_record is None:
        raise ReferenceUnavailable(
            "the baseline has no deployment record (recorded before --ab-baseline existed); "
            "record it again with --update-baselines"
        )
    if current_record is None:
        raise ReferenceUnavailable("the measured server's model directories are not on this machine")
    if _listify(dict(baseline_record)) == _listify(dict(current_record)):
        raise ReferenceUnavailable(
            "the deployment is unchanged from the baseline's, nothing to serve beside it"
        )
    for key in ("backend", "server"):
        was, now = baseline_fingerprint.get(key), current_fingerprint.get(key)
        if was != now:
            raise ReferenceUnavailable(
                f"the baseline was measured on {key} {was!r} and this session serves {now!r}; one "
                "session cannot serve both, and the stored runs come from that other "
                f"{key}, so the comparison is incomparable (a failure unless "
                "--perf-hardware-mismatch=warn); record the baseline with this "
                f"{key} on this runner (--update-baselines) to compare"
            )
    return reference_spec(baseline_record, store)
