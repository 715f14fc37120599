"""Tiny SavedModels with tf.Example signatures (classify, regress) for the embedded-server tests.

``export_half_plus`` writes a TF1-style graph, y = 0.5 * x + ``add``, with the signature kinds TF Serving
serves: predict (``serving_default``: x -> y), classify (serialized tf.Example with float feature
``x`` -> ``scores``; and one with ``classes`` too), regress (tf.Example -> ``outputs``).
``export_tf2_module`` writes a ``tf.saved_model.save`` module whose signatures all have the predict
method name, as TF2 exports do, one of them shaped for Regress. Both build in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_half_plus(path: Path, add: float = 2.0) -> Path:
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        serialized = v1.placeholder(tf.string, name="tf_example")
        parsed = v1.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        x = tf.identity(parsed["x"], name="x")  # [batch, 1]
        y = tf.add(tf.multiply(x, 0.5), add, name="y")
        raw_x = v1.placeholder(tf.float32, [None, 1], name="raw_x")
        raw_y = tf.add(tf.multiply(raw_x, 0.5), add, name="raw_y")
        labels = tf.tile(tf.constant([["low", "high"]]), tf.stack([tf.shape(y)[0], 1]), name="labels")
        two_scores = tf.concat([1.0 - y, y], axis=1, name="two_scores")
        sig = v1.saved_model.signature_def_utils
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": sig.predict_signature_def({"x": raw_x}, {"y": raw_y}),
                "classify_x_to_y": sig.classification_signature_def(serialized, None, y),
                "classify_with_labels": sig.classification_signature_def(serialized, labels, two_scores),
                "regress_x_to_y": sig.regression_signature_def(serialized, y),
            },
        )
        builder.save()
    return path


def export_tf2_module(path: Path, scale: float = 3.0) -> Path:
    """``tf.saved_model.save`` with two signatures: ``serving_default`` (x -> y = scale * x) and
    ``regress_x_to_y`` (tf.Example "inputs" -> "outputs"), both with the predict method name."""
    import tensorflow as tf

    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: Any) -> dict[str, Any]:
            return {"y": x * scale}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs: Any) -> dict[str, Any]:
            parsed = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            return {"outputs": parsed["x"] * scale}

    module = Scale()
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.predict, "regress_x_to_y": module.regress}
    )
    return path
