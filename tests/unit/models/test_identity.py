"""A model's identity follows what it computes: one identity for the same seeded model exported in
another process (whose files differ byte for byte), another for any change to a weight, the graph
or a signature; and the variant cache, keyed by it, hits across sessions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.models.hashing import hash_directory
from pytest_tfserving.models.identity import identity_kinds, model_identity
from pytest_tfserving.models.tflite import convert
from pytest_tfserving.models.tiny import export_savedmodel
from pytest_tfserving.models.variants import TFLITE_FILE, build_info, build_model_variant
from pytest_tfserving.serving.spec import ModelSpec

WORKER = Path(__file__).with_name("identity_worker.py")
TFLITE_VARIANTS = ("fp16", "int8-dynamic", "int8")


def _cnn(
    seed: int = 0,
    activation: str = "relu",
    input_name: str = "images",
    dtype: str = "float32",
    shape: tuple[int, int, int] = (8, 8, 3),
) -> Any:
    """``models.tiny.build_tiny_cnn`` with the knobs these tests turn one at a time."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=shape, dtype=dtype, name=input_name)
    x = keras.layers.Conv2D(16, 3, padding="same", activation=activation)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation=activation)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


@pytest.fixture(scope="module")
def shared_cache(tiny_savedmodel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This session's int8-dynamic build of the tiny SavedModel, in a cache the other session shares."""
    cache = tmp_path_factory.mktemp("shared_cache")
    spec = build_model_variant(tiny_savedmodel, name="tiny", variant="int8-dynamic", cache_dir=cache)
    return cache, build_info(spec)["build_id"]


@pytest.fixture(scope="module")
def other_session(shared_cache: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What identity_worker.py exported and built in a fresh Python process."""
    out = tmp_path_factory.mktemp("other_session")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    done = subprocess.run(
        [sys.executable, str(WORKER), str(out), str(shared_cache[0])],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_seeded_model_exported_by_another_process_has_one_identity(
    tiny_savedmodel: Path, other_session: dict[str, Any]
) -> None:
    first, renamed = (Path(other_session[k]["fp32"]) for k in ("first", "renamed"))
    # The premise: the files differ (fingerprint.pb's uuid, Keras's variable order, layer numbering).
    assert hash_directory(first) != hash_directory(tiny_savedmodel)
    assert (first / "saved_model.pb").read_bytes() != (renamed / "saved_model.pb").read_bytes()
    assert model_identity(first) == model_identity(renamed) == model_identity(tiny_savedmodel)
    assert identity_kinds(first) == {".": "savedmodel"}


@pytest.mark.parametrize("variant", sorted(TFLITE_VARIANTS))  # sorted: xdist workers collect alike
def test_tflite_variants_have_one_identity_across_processes_and_layer_names(
    variant: str, built_variants: dict[str, ModelSpec], other_session: dict[str, Any]
) -> None:
    ours = built_variants[variant].base_path / "1" / TFLITE_FILE
    first, renamed = (Path(other_session[k][variant]) for k in ("first", "renamed"))
    assert first.read_bytes() != renamed.read_bytes(), "tensor names follow Keras's layer numbering"
    assert model_identity(first) == model_identity(renamed) == model_identity(ours)
    assert identity_kinds(ours) == {".": "tflite"}


def test_a_rebuilt_identical_source_hits_the_variant_cache_in_another_session(
    shared_cache: tuple[Path, str], other_session: dict[str, Any]
) -> None:
    cache, build_id = shared_cache
    assert other_session["build"]["build_id"] == build_id, "the other session built the variant again"
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [
        Path(other_session["build"]["base_path"]).parent.name
    ]


def test_identity_changes_with_a_weight_the_graph_or_the_signature(tmp_path: Path) -> None:
    base = _cnn()
    weights = base.get_weights()
    one_weight = _cnn()
    nudged = [w.copy() for w in weights]
    nudged[0].flat[0] += 1e-3
    one_weight.set_weights(nudged)
    other_graph = _cnn(activation="tanh")
    other_graph.set_weights(weights)
    other_op = _cnn(activation="relu6")  # Relu6 has Relu's inputs, attributes and output name
    other_op.set_weights(weights)
    models = {
        "base": base,
        "one_weight": one_weight,
        "other_graph": other_graph,
        "other_op": other_op,
        "input_name": _cnn(input_name="pixels"),
        "input_dtype": _cnn(dtype="float16"),
        "input_shape": _cnn(shape=(16, 16, 3)),
    }
    identities = {k: model_identity(export_savedmodel(m, tmp_path / k)) for k, m in models.items()}
    assert len(set(identities.values())) == len(identities), identities
    assert identities["base"] == model_identity(export_savedmodel(_cnn(), tmp_path / "again"))


def test_swapping_two_same_shaped_weights_changes_identity(tmp_path: Path) -> None:
    model = _cnn()
    weights = model.get_weights()
    weights[1] = np.arange(16, dtype=np.float32)  # the two conv biases: both (16,)
    weights[3] = -np.arange(16, dtype=np.float32)
    model.set_weights(weights)
    before = model_identity(export_savedmodel(model, tmp_path / "a"))
    weights[1], weights[3] = weights[3], weights[1]
    model.set_weights(weights)
    assert model_identity(export_savedmodel(model, tmp_path / "b")) != before


def test_a_changed_value_in_the_checkpoint_file_changes_identity(
    tiny_savedmodel: Path, tiny_model: Any, tmp_path: Path
) -> None:
    copy = shutil.copytree(tiny_savedmodel, tmp_path / "copy")
    data = copy / "variables" / "variables.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    at = raw.find(np.ascontiguousarray(tiny_model.get_weights()[0]).tobytes())
    assert at >= 0, "the first conv kernel is stored as is"
    raw[at] ^= 0x01  # the lowest mantissa bit of one float
    data.write_bytes(bytes(raw))
    assert model_identity(copy) != model_identity(tiny_savedmodel)


def test_tflite_identity_changes_with_a_weight_or_an_operator_option(
    built_variants: dict[str, ModelSpec], tmp_path: Path
) -> None:
    base = built_variants["fp16"].base_path / "1" / TFLITE_FILE
    weights = _cnn().get_weights()
    weights[4] = weights[4] * 1.01  # the dense kernel: enough to survive fp16 rounding
    one_weight = _cnn()
    one_weight.set_weights(weights)
    # relu6 fuses into the convolutions like relu: only the operators' options differ.
    other_options = _cnn(activation="relu6")
    other_options.set_weights(_cnn().get_weights())
    identities = {model_identity(base)}
    for name, model in (("one_weight", one_weight), ("other_options", other_options)):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(convert(export_savedmodel(model, tmp_path / name), "fp16", None))
        identities.add(model_identity(path))
    assert len(identities) == 3


def test_a_base_path_covers_its_versions_and_served_extra_files(
    tiny_savedmodel: Path, tmp_path: Path
) -> None:
    base = tmp_path / "tiny"
    shutil.copytree(tiny_savedmodel, base / "1")
    first = model_identity(base)
    assert identity_kinds(base) == {"1": "savedmodel"}
    (base / "1" / "fingerprint.pb").write_bytes(b"rewritten")  # a uuid and byte hashes: not the model
    assert model_identity(base) == first
    (base / "1" / "assets.extra").mkdir()
    (base / "1" / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"requests")
    warmed = model_identity(base)
    assert warmed != first
    assert identity_kinds(base)["1/assets.extra/tf_serving_warmup_requests"] == "bytes"
    os.rename(base / "1", base / "2")
    assert model_identity(base) not in (first, warmed)


def test_what_is_not_a_readable_model_is_hashed_by_its_bytes(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"\xff\xff not a protobuf")
    (broken / "variables" / "variables.index").write_bytes(b"index")
    first = model_identity(broken)
    assert identity_kinds(broken) == {"saved_model.pb": "bytes", "variables/variables.index": "bytes"}
    (broken / "variables" / "variables.index").write_bytes(b"indey")
    assert model_identity(broken) != first

    files = tmp_path / "files"
    files.mkdir()
    (files / "model.tflite").write_bytes(b"not a flatbuffer")
    (files / "notes.txt").write_text("x")
    assert identity_kinds(files) == {"model.tflite": "bytes", "notes.txt": "bytes"}
    before = model_identity(files)
    (files / "notes.txt").write_text("y")
    assert model_identity(files) != before
    assert model_identity(files / "notes.txt").startswith("sha256:")

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model files"):
        model_identity(tmp_path / "empty")


def _tf1_savedmodel(path: Path, weights: np.ndarray, bias: float) -> Path:
    """A TF1-style SavedModel: frozen weights as a constant, a reference variable restored from the
    checkpoint, and a while loop (a cycle in the graph)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, weights.shape[0]], name="x")
        b = tf.compat.v1.get_variable("b", initializer=tf.fill([weights.shape[1]], bias), use_resource=False)
        start = [tf.constant(0), tf.matmul(x, weights) + b]
        _, y = tf.compat.v1.while_loop(lambda i, acc: i < 3, lambda i, acc: (i + 1, acc * 2.0), start)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map={"serving_default": signature}
            )
            builder.save()
    return path


def test_a_tf1_graph_with_frozen_constants_and_a_loop_follows_its_values(tmp_path: Path) -> None:
    weights = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    nudged = weights.copy()
    nudged[5, 5] += 1e-3
    base = model_identity(_tf1_savedmodel(tmp_path / "base", weights, 1.0))
    assert identity_kinds(tmp_path / "base") == {".": "savedmodel"}
    assert model_identity(_tf1_savedmodel(tmp_path / "again", weights, 1.0)) == base
    assert model_identity(_tf1_savedmodel(tmp_path / "constant", nudged, 1.0)) != base
    assert model_identity(_tf1_savedmodel(tmp_path / "variable", weights, 2.0)) != base
