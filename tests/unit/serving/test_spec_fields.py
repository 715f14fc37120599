"""Every ServerSpec field reaches every consumer: server flags or files, MANAGED_FLAGS, the baseline
fingerprint (``spec_flags``) and the deployment record that ``--ab-baseline`` serves again.

The cases come from ``dataclasses.fields(ServerSpec)``, so a field added without its row in
``serving.fields`` (or one a consumer drops) turns this file red.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.deployments import DeploymentStore, deployment_record, reference_spec
from pytest_tfserving.gate.fingerprint import hash_model_dir, spec_flags
from pytest_tfserving.serving.fields import FIELDS, LAYOUT_FLAGS, SPEC_FIELDS, spec_field
from pytest_tfserving.serving.render import RenderedServer, ServerLayout, render_server
from pytest_tfserving.serving.spec import (
    MANAGED_FLAGS,
    BatchingSpec,
    ModelSpec,
    ServerSpec,
    SpecError,
    VersionPolicy,
)

LAYOUT = ServerLayout(8500, 8501, "/config", lambda m: f"/models/{m.name}")
BASE = ServerSpec.single("tiny", "/h/tiny")
SPEC_FIELD_NAMES = [f.name for f in dataclasses.fields(ServerSpec)]

NEEDS: dict[str, dict[str, Any]] = {"batching": {"enable_batching": True}}
"""Other settings a field's sample needs to be a valid spec."""


def _sample(item: dataclasses.Field[Any]) -> Any:
    """A value unlike the field's default, from its type: the field under test set to something."""
    if item.name == "models":
        return (*BASE.models, ModelSpec("other", Path("/h/other"), version_policy=VersionPolicy("all")))
    default = getattr(BASE, item.name)
    hint = typing.get_type_hints(ServerSpec)[item.name]
    options = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    kind = typing.get_origin(options[0]) or options[0]
    if kind is bool:
        return not default
    if kind is int:
        return 3
    if kind is float:
        return 0.5
    if kind is str:
        return "/sample"
    if kind is tuple:
        return ("--enable_grpc_healthcheck_service=true",)  # a real flag no field owns
    if dataclasses.is_dataclass(kind):
        return BatchingSpec(max_batch_size=8, allowed_batch_sizes=(4, 8)) if kind is BatchingSpec else kind()
    raise AssertionError(f"no sample value for ServerSpec.{item.name}: {hint}; teach _sample one")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _specs(name: str) -> tuple[ServerSpec, ServerSpec]:
    """BASE (with what the sample needs) and the same spec with field ``name`` set to its sample."""
    item = next(f for f in dataclasses.fields(ServerSpec) if f.name == name)
    base = dataclasses.replace(BASE, **NEEDS.get(name, {}))
    changed = dataclasses.replace(base, **{name: _sample(item)})
    assert getattr(changed, name) != getattr(base, name)
    return base.validate(), changed.validate()


def _rendering(spec: ServerSpec) -> tuple[tuple[str, ...], dict[str, str]]:
    rendered: RenderedServer = render_server(spec, LAYOUT)
    return rendered.flags, dict(rendered.files)


def _round_trip(spec: ServerSpec, store: DeploymentStore) -> tuple[dict[str, Any], ServerSpec]:
    """Record ``spec`` with each model put in ``store`` (real files, stored under their identity,
    since the store checks what it serves), and rebuild the spec from the record."""
    digests = {}
    for i, m in enumerate(spec.models):
        files = store.root.parent / "models" / m.name / "1"
        files.mkdir(parents=True, exist_ok=True)
        (files / "weights.bin").write_bytes(f"{m.name} {i}".encode())
        digests[m.name] = hash_model_dir(files.parent)
        store.put(files.parent, digests[m.name])
    record = deployment_record(spec, digests)
    return record, reference_spec(json.loads(json.dumps(record)), store)


def test_every_field_has_one_row() -> None:
    names = [row.name for row in SPEC_FIELDS]
    assert len(names) == len(set(names)) == len(FIELDS)
    assert sorted(names) == sorted(SPEC_FIELD_NAMES), (
        "ServerSpec fields and serving.fields.SPEC_FIELDS differ: give each field one row"
    )


@pytest.mark.parametrize("name", SPEC_FIELD_NAMES)
def test_field_changes_the_rendered_server(name: str) -> None:
    base, changed = _specs(name)
    assert _rendering(changed) != _rendering(base), f"ServerSpec.{name} does not reach the server"


@pytest.mark.parametrize("name", SPEC_FIELD_NAMES)
def test_the_flags_a_field_renders_are_managed(name: str) -> None:
    """extra_flags may not repeat what a field sets (except extra_flags itself, the user's own)."""
    base, changed = _specs(name)
    new_flags = set(_rendering(changed)[0]) - set(_rendering(base)[0])
    row = spec_field(name)
    if row.render == "append":
        assert row.flags == () and new_flags == set(changed.extra_flags)
        return
    assert row.flags and all(flag in MANAGED_FLAGS for flag in row.flags)
    for flag in new_flags:
        flag_name = flag[2:].split("=", 1)[0]
        assert flag_name in row.flags, f"ServerSpec.{name} renders --{flag_name}, which its row does not own"
        with pytest.raises(SpecError, match=f"repeats a flag ServerSpec owns: {row.fix}"):
            dataclasses.replace(base, extra_flags=(flag,)).validate()


def test_only_models_and_the_metrics_path_stay_out_of_the_fingerprint() -> None:
    """Keeping a field out of server_flags is a decision this list records, not a default."""
    assert {row.name for row in SPEC_FIELDS if row.unfingerprinted} == {"models", "prometheus_path"}


@pytest.mark.parametrize("name", SPEC_FIELD_NAMES)
def test_field_enters_the_fingerprint_or_says_why_not(name: str) -> None:
    base, changed = _specs(name)
    row = spec_field(name)
    if row.unfingerprinted:
        assert spec_flags(changed) == spec_flags(base)
    else:
        assert spec_flags(changed) != spec_flags(base), f"ServerSpec.{name} is missing from server_flags"
        assert any(entry.startswith(f"{name}=") for entry in spec_flags(changed) + spec_flags(base))


@pytest.mark.parametrize("name", SPEC_FIELD_NAMES)
def test_field_survives_the_deployment_record(name: str, tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "store")
    base, changed = _specs(name)
    base_record, _ = _round_trip(base, store)
    record, rebuilt = _round_trip(changed, store)
    assert record != base_record, f"ServerSpec.{name} is missing from the deployment record"
    assert record == json.loads(json.dumps(record))
    served_from_store = tuple(
        dataclasses.replace(m, base_path=store.get(record["spec"]["models"][i]["digest"]))
        for i, m in enumerate(changed.models)
    )
    assert rebuilt == dataclasses.replace(changed, models=served_from_store)


def test_managed_flags_are_the_layouts_and_the_rows() -> None:
    owned = dict(LAYOUT_FLAGS)
    for row in SPEC_FIELDS:
        owned.update(dict.fromkeys(row.flags, row.fix))
    assert owned == MANAGED_FLAGS
    assert MANAGED_FLAGS["tensorflow_intra_op_parallelism"] == "set ServerSpec.intra_op"
    assert MANAGED_FLAGS["model_name"] == "models come from ServerSpec.models"
