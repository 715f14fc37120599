"""Deployment records, the content-addressed model store, and when a reference can be served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.gate.baselines import load_baseline, write_baseline
from pytest_tfserving.gate.deployments import (
    DeploymentStore,
    ReferenceUnavailable,
    StoreEntryChanged,
    deployment_record,
    plan_reference,
    reference_spec,
)
from pytest_tfserving.gate.fingerprint import hash_model_dir
from pytest_tfserving.models.hashing import hash_directory
from pytest_tfserving.serving.spec import BatchingSpec, ModelSpec, ServerSpec, VersionPolicy
from tests.unit.gate.gate_factories import MakeMeasurement


def _model_dir(root: Path, content: bytes) -> Path:
    (root / "1" / "variables").mkdir(parents=True)
    (root / "1" / "saved_model.pb").write_bytes(content)
    (root / "1" / "variables" / "variables.index").write_bytes(content[::-1])
    return root


def _spec(path: Path, **settings: Any) -> ServerSpec:
    model = ModelSpec("tiny", path, version_policy=VersionPolicy("specific", versions=(1,)))
    return ServerSpec(models=(model,), **settings)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return _model_dir(tmp_path / "tiny", b"graph-a")


def test_record_survives_the_baseline_file_and_rebuilds_the_spec_from_the_store(
    tmp_path: Path, model: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    spec = _spec(
        model, intra_op=2, enable_batching=True,
        batching=BatchingSpec(max_batch_size=8, allowed_batch_sizes=(4, 8)), extra_flags=("--x=1",),
    )
    digest = hash_model_dir(model)
    record = deployment_record(spec, {"tiny": digest})
    path = tmp_path / "b.json"
    write_baseline(path, "t", make_measurement([1.0] * 6), fingerprint, deployment=record)
    loaded = load_baseline(path)
    assert loaded is not None and loaded.deployment == json.loads(json.dumps(record))

    store = DeploymentStore(tmp_path / "store")
    stored = store.put(model, digest)
    assert hash_model_dir(stored) == digest and store.put(model, digest) == stored
    rebuilt = reference_spec(loaded.deployment, store)
    assert rebuilt.models[0].base_path == stored
    assert rebuilt == _spec(
        stored, intra_op=2, enable_batching=True,
        batching=BatchingSpec(max_batch_size=8, allowed_batch_sizes=(4, 8)), extra_flags=("--x=1",),
    )


def test_a_store_entry_always_holds_what_its_name_says(tmp_path: Path, model: Path) -> None:
    store = DeploymentStore(tmp_path / "store")
    with pytest.raises(ReferenceUnavailable, match="changed while it was copied"):
        store.put(model, "sha256:0000000000000000")
    assert store.get("sha256:0000000000000000") is None
    assert [p.name for p in store.root.iterdir()] == []  # no staging left behind
    with pytest.raises(ValueError, match="sha256:<hex>"):
        store.get("../../etc")


def test_plan_reference_says_why_it_cannot_serve_the_baseline(tmp_path: Path, model: Path) -> None:
    store = DeploymentStore(tmp_path / "store")
    old = deployment_record(_spec(model), {"tiny": hash_model_dir(model)})
    faster = _model_dir(tmp_path / "faster", b"graph-b")
    new = deployment_record(_spec(faster), {"tiny": hash_model_dir(faster)})
    fp = {"backend": "embedded", "server": "embedded (TF 2.21.0)"}

    with pytest.raises(ReferenceUnavailable, match="no deployment record"):
        plan_reference(None, fp, new, fp, store)
    with pytest.raises(ReferenceUnavailable, match="unchanged"):
        plan_reference(old, fp, json.loads(json.dumps(old)), fp, store)
    with pytest.raises(ReferenceUnavailable, match=r"server 'embedded .TF 2.20.0.' and this session"):
        plan_reference(old, {**fp, "server": "embedded (TF 2.20.0)"}, new, fp, store)
    # The caller falls back to the stored runs: the reason says they are incomparable, and the fix.
    with pytest.raises(
        ReferenceUnavailable,
        match=r"backend 'embedded' and this session serves 'docker'; one session cannot serve both, "
        r"and the stored runs come from that other backend, so the comparison is incomparable "
        r"\(a failure unless --perf-hardware-mismatch=warn\); record the baseline with this backend "
        r"on this runner \(--update-baselines\)",
    ):
        plan_reference(old, fp, new, {**fp, "backend": "docker"}, store)
    with pytest.raises(ReferenceUnavailable, match=r"not in the deployment store .*--update-baselines"):
        plan_reference(old, fp, new, fp, store)

    store.put(model, hash_model_dir(model))
    assert plan_reference(old, fp, new, fp, store).models[0].base_path.parent == store.root
    # Same model, other flags: a changed deployment too.
    threads = deployment_record(_spec(model, intra_op=4), {"tiny": hash_model_dir(model)})
    assert plan_reference(old, fp, threads, fp, store).intra_op is None


def test_get_hashes_the_entry_again_and_refuses_a_rewritten_one(tmp_path: Path, model: Path) -> None:
    store = DeploymentStore(tmp_path / "store")
    digest = hash_model_dir(model)
    entry = store.put(model, digest)
    assert store.get(digest) == entry
    (entry / "1" / "variables" / "variables.index").write_bytes(b"rewritten by a pull request")
    fix = rf"{entry} no longer holds model {digest}: .*not served.*rm -r {entry} && pytest --update-baselines"
    with pytest.raises(StoreEntryChanged, match=fix):
        store.get(digest)
    # Not a ReferenceUnavailable: planning the reference errors instead of falling back quietly.
    record = deployment_record(_spec(model), {"tiny": digest})
    with pytest.raises(StoreEntryChanged):
        reference_spec(record, store)
    # Recording again (put) replaces the rewritten entry with a verified copy.
    assert store.put(model, digest) == entry
    assert store.get(digest) == entry and hash_model_dir(entry) == digest
    assert sorted(p.name for p in store.root.iterdir()) == [entry.name]
    for child in entry.iterdir():
        shutil.rmtree(child)
    with pytest.raises(StoreEntryChanged, match="nothing"):
        store.get(digest)


def test_an_entry_named_by_its_bytes_before_model_identities_is_still_served(
    tmp_path: Path, model: Path
) -> None:
    legacy = "sha256:" + hash_directory(model)[:16]
    store = DeploymentStore(tmp_path / "store")
    shutil.copytree(model, store.root / f"sha256-{legacy.partition(':')[2]}")
    assert store.get(legacy) == store.root / f"sha256-{legacy.partition(':')[2]}"


@pytest.fixture(scope="module")
def savedmodel_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A real tiny SavedModel under a TF Serving base path, and its first conv kernel."""
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    model = build_tiny_cnn(seed=0)
    base = tmp_path_factory.mktemp("real") / "tiny"
    export_savedmodel(model, base / "1")
    return base, np.ascontiguousarray(model.get_weights()[0])


def test_a_rewritten_weight_in_a_stored_savedmodel_is_refused(
    tmp_path: Path, savedmodel_base: tuple[Path, np.ndarray]
) -> None:
    base, kernel = savedmodel_base
    store = DeploymentStore(tmp_path / "store")
    digest = hash_model_dir(base)
    entry = store.put(base, digest)
    data = entry / "1" / "variables" / "variables.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    at = raw.find(kernel.tobytes())
    assert at >= 0
    raw[at] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(StoreEntryChanged, match="no longer holds"):
        store.get(digest)
