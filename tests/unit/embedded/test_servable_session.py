"""SavedModelServable runs the MetaGraph in a v1 Session: same numbers as the eager signature function,
same INVALID_ARGUMENT errors, variables restored, thread-safe, thread pools from tf.config.threading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.embedded.errors import ServingError
from pytest_tfserving.embedded.servables import (
    DEFAULT_SIGNATURE,
    SavedModelServable,
    read_signature_defs,
)

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    return export_savedmodel(build_tiny_cnn(seed=3), tmp_path_factory.mktemp("tiny") / "1")


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tf.Module with a variable, two inputs, three outputs (aliases not in sorted order), a string
    signature and a signature whose graph fails at run time for some well-shaped inputs."""
    import tensorflow as tf

    class Scaler(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable([1.5, -2.0, 3.0], dtype=tf.float32)
            self.calls = tf.Variable(0, dtype=tf.int64)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3], tf.float32, name="x"),
                tf.TensorSpec([None], tf.int32, name="k"),
            ]
        )
        def predict(self, x: Any, k: Any) -> dict[str, Any]:
            return {
                "zeta": x * self.scale,
                "alpha": tf.reduce_sum(x, axis=1) + tf.cast(k, tf.float32),
                "mid": k * 2,
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
        def lengths(self, words: Any) -> dict[str, Any]:
            return {"length": tf.strings.length(words)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="flat")])
        def triple(self, flat: Any) -> dict[str, Any]:
            return {"rows": tf.reshape(flat, [-1, 3])}

    module = Scaler()
    path = tmp_path_factory.mktemp("module") / "1"
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            DEFAULT_SIGNATURE: module.predict,
            "lengths": module.lengths,
            "triple": module.triple,
        },
    )
    return path


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> Iterator[SavedModelServable]:
    servable = SavedModelServable(tiny_dir, 1)
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def module(module_dir: Path) -> Iterator[SavedModelServable]:
    servable = SavedModelServable(module_dir, 2)
    yield servable
    servable.close()


def _eager(path: Path, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The old path: the loaded TF2 concrete function, called eagerly."""
    import tensorflow as tf

    function = tf.saved_model.load(str(path)).signatures[signature]
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@pytest.mark.parametrize("batch", [1, 5])
def test_tiny_model_matches_eager_path(tiny: SavedModelServable, tiny_dir: Path, batch: int) -> None:
    images = RNG.random((batch, 8, 8, 3), dtype=np.float32)
    got = tiny.run(DEFAULT_SIGNATURE, {"images": images})
    want = _eager(tiny_dir, DEFAULT_SIGNATURE, {"images": images})
    assert set(got) == set(want) == {"output_0"}
    assert got["output_0"].shape == (batch, 10)
    assert got["output_0"].dtype == np.float32
    np.testing.assert_allclose(got["output_0"], want["output_0"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["output_0"].sum(axis=1), 1.0, rtol=1e-5)  # softmax, not zeros


def test_signatures_come_from_the_meta_graph(tiny: SavedModelServable, tiny_dir: Path) -> None:
    assert tiny.version == 1
    assert tiny.signature_defs == read_signature_defs(tiny_dir, {"serve"})
    assert DEFAULT_SIGNATURE in tiny.signatures
    assert "__saved_model_init_op" in tiny.signature_defs
    assert "__saved_model_init_op" not in tiny.signatures
    spec = tiny.signatures[DEFAULT_SIGNATURE]
    assert spec.inputs["images"].shape == (None, 8, 8, 3)
    assert spec.outputs["output_0"].shape == (None, 10)


def test_variables_restored_and_outputs_mapped_to_aliases(
    module: SavedModelServable, module_dir: Path
) -> None:
    inputs = {"x": RNG.random((4, 3), dtype=np.float32), "k": np.arange(4, dtype=np.int32)}
    got = module.run(DEFAULT_SIGNATURE, inputs)
    assert set(got) == {"zeta", "alpha", "mid"}
    np.testing.assert_allclose(got["zeta"], inputs["x"] * np.array([1.5, -2.0, 3.0], np.float32), rtol=1e-6)
    np.testing.assert_allclose(got["alpha"], inputs["x"].sum(axis=1) + inputs["k"], rtol=1e-6)
    np.testing.assert_array_equal(got["mid"], inputs["k"] * 2)
    assert got["mid"].dtype == np.int32
    want = _eager(module_dir, DEFAULT_SIGNATURE, inputs)
    for alias, value in want.items():
        np.testing.assert_allclose(got[alias], value, rtol=1e-6)


@pytest.mark.parametrize(
    "words",
    [
        np.array([b"ab", b"", b"xyz"], dtype=object),
        np.array(["ab", "", "xyz"]),
        np.array([b"ab", b"", b"xyz"]),
    ],
    ids=["object-bytes", "unicode", "bytes"],
)
def test_string_inputs(module: SavedModelServable, words: np.ndarray) -> None:
    got = module.run("lengths", {"words": words})
    np.testing.assert_array_equal(got["length"], [2, 0, 3])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"images": np.zeros((1, 8, 8, 3), np.float64)}, "Expects arg[images] to be float but double"),
        ({"images": np.zeros((1, 8, 8, 3), np.int32)}, "Expects arg[images] to be float but int32"),
        ({"images": np.zeros((8, 8, 3), np.float32)}, "but the signature expects [?,8,8,3]"),
        ({"pixels": np.zeros((1, 8, 8, 3), np.float32)}, "input tensor alias not found in signature: pixels"),
        ({}, "input size does not match signature: 0!=1"),
    ],
    ids=["float64", "int32", "rank", "alias", "missing"],
)
def test_bad_feeds_are_invalid_argument(
    tiny: SavedModelServable, inputs: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(ServingError) as raised:
        tiny.run(DEFAULT_SIGNATURE, inputs)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in str(raised.value)


def test_shapes_are_not_held_to_the_signature_as_tf_serving_does_not(tiny: SavedModelServable) -> None:
    """Declared [?,8,8,3]; TF Serving feeds [1,4,8,3] as sent and the convolutions take it."""
    assert tiny.run(DEFAULT_SIGNATURE, {"images": np.zeros((1, 4, 8, 3), np.float32)})["output_0"].shape == (
        1,
        10,
    )


def test_graph_errors_at_run_time_are_invalid_argument(module: SavedModelServable) -> None:
    ok = module.run("triple", {"flat": np.arange(6, dtype=np.float32)})
    np.testing.assert_array_equal(ok["rows"], np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(ServingError) as raised:
        module.run("triple", {"flat": np.arange(4, dtype=np.float32)})
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reshape" in str(raised.value).lower()
    assert "\n" not in str(raised.value)


def test_concurrent_runs_get_their_own_results(tiny: SavedModelServable) -> None:
    batches = [RNG.random((1 + i % 3, 8, 8, 3), dtype=np.float32) for i in range(32)]
    serial = [tiny.run(DEFAULT_SIGNATURE, {"images": b})["output_0"] for b in batches]

    def call(i: int) -> np.ndarray:
        return tiny.run(DEFAULT_SIGNATURE, {"images": batches[i]})["output_0"]

    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            parallel = list(pool.map(call, range(len(batches))))
            for want, got in zip(serial, parallel, strict=True):
                np.testing.assert_array_equal(got, want)


def test_close_closes_the_session(tiny_dir: Path) -> None:
    servable = SavedModelServable(tiny_dir, 1)
    session = servable._session
    assert not session._closed
    servable.close()
    assert session._closed
    with pytest.raises(KeyError):
        servable.run(DEFAULT_SIGNATURE, {"images": np.zeros((1, 8, 8, 3), np.float32)})


def test_missing_tags_name_the_tags(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"no meta graph with tags \['gpu', 'serve'\]"):
        SavedModelServable(tiny_dir, 1, ("serve", "gpu"))


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    intra, inter = int(sys.argv[2]), int(sys.argv[3])
    if intra > 0:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter > 0:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    from pytest_tfserving.embedded.servables import SavedModelServable
    servable = SavedModelServable(Path(sys.argv[1]), 1)
    servable.run("serving_default", {"images": np.zeros((1, 8, 8, 3), np.float32)})
    used = servable._session._config
    print(json.dumps([used.intra_op_parallelism_threads, used.inter_op_parallelism_threads,
                      servable.session_config.intra_op_parallelism_threads,
                      servable.session_config.inter_op_parallelism_threads]))
    """
)


@pytest.mark.parametrize(("intra", "inter"), [(1, 2), (0, 0)])
def test_session_honours_process_thread_settings(tiny_dir: Path, intra: int, inter: int) -> None:
    """The server's parallelism flags go through tf.config.threading before loading (main.py)."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tiny_dir), str(intra), str(inter)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert json.loads(child.stdout.strip().splitlines()[-1]) == [intra, inter, intra, inter]
