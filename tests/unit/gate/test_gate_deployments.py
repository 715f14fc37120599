"""Deployment records, the content-addressed model store, and when a reference can be served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.baselines import load_baseline, write_baseline
from pytest_tfserving.gate.deployments import (
    DeploymentStore,
    ReferenceUnavailable,
    deployment_record,
    plan_reference,
    reference_spec,
)
from pytest_tfserving.gate.fingerprint import hash_model_dir
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
    with pytest.raises(ReferenceUnavailable, match=r"not in the deployment store .*--update-baselines"):
        plan_reference(old, fp, new, fp, store)

    store.put(model, hash_model_dir(model))
    assert plan_reference(old, fp, new, fp, store).models[0].base_path.parent == store.root
    # Same model, other flags: a changed deployment too.
    threads = deployment_record(_spec(model, intra_op=4), {"tiny": hash_model_dir(model)})
    assert plan_reference(old, fp, threads, fp, store).intra_op is None
