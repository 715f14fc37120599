"""Classify, Regress and MultiInference on tf.Example inputs, with TF Serving 2.19.1's checks and texts.

The signature is looked up by name (INVALID_ARGUMENT "No signature was found with the name: ..."),
then checked as upstream's PreProcessClassification/PreProcessRegression check it: one input keyed
``inputs``; ``classes`` and/or ``scores`` (classify) or ``outputs`` (regress). The method_name must
match only with --enable_signature_method_name_check, so TF2 models whose signatures all say
"predict" classify and regress too, as they do on the real server. The outputs are then checked and
converted as PostProcess* does. The signature runs through the servable (and its batcher) like Predict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from pytest_tfserving.embedded import metrics as m
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.examples import serialized_examples
from pytest_tfserving.embedded.manager import Loaded, ModelManager, requested_version
from pytest_tfserving.embedded.servables import DEFAULT_SIGNATURE

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
INPUTS, CLASSES, SCORES, OUTPUTS = "inputs", "classes", "scores", "outputs"


@dataclass(frozen=True)
class InferenceOptions:
    """Server-wide switches that change these APIs (--enable_signature_method_name_check)."""

    method_name_check: bool = False


def _debug(signature: meta_graph_pb2.SignatureDef) -> str:
    return str(signature)


def _lookup(loaded: Loaded, name: str) -> meta_graph_pb2.SignatureDef:
    key = name or DEFAULT_SIGNATURE
    found = loaded.servable.signature_defs.get(key)
    if found is None:
        raise invalid(f"No signature was found with the name: {key}")
    return found


def check_classification(sig: meta_graph_pb2.SignatureDef, options: InferenceOptions) -> list[str]:
    """PreProcessClassification: the output aliases to fetch (classes before scores)."""
    if options.method_name_check and sig.method_name != CLASSIFY_METHOD:
        raise invalid(
            f"Expected classification signature method_name to be {CLASSIFY_METHOD}. Was: {sig.method_name}"
        )
    if len(sig.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(sig.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if INPUTS not in sig.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {_debug(sig)}")
    fetch = [alias for alias in (CLASSES, SCORES) if alias in sig.outputs]
    if not fetch:
        raise invalid(
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {_debug(sig)}'
        )
    return fetch


def check_regression(sig: meta_graph_pb2.SignatureDef, options: InferenceOptions) -> list[str]:
    """PreProcessRegression: the one output alias to fetch."""
    if options.method_name_check and sig.method_name != REGRESS_METHOD:
        raise invalid(
            f"Expected regression signature method_name to be {REGRESS_METHOD}. Was: {sig.method_name}"
        )
    if len(sig.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(sig.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if INPUTS not in sig.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {_debug(sig)}")
    if OUTPUTS not in sig.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {_debug(sig)}")
    return [OUTPUTS]


def _shape(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    names = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int32": "DT_INT32", "int64": "DT_INT64"}
    return names.get(array.dtype.name, f"DT_{array.dtype.name.upper()}")


def _check_matrix(name: str, array: np.ndarray, dtype: str, num_examples: int) -> None:
    if array.ndim != 2:
        raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got {_shape(array)}")
    if _dtype_name(array) != dtype:
        raise invalid(f"Expected {name} Tensor of {dtype}. Got: {_dtype_name(array)}")
    if array.shape[0] != num_examples:
        raise invalid(f"Expected {name} output batch size of {num_examples}. Got: {array.shape[0]}")


def classification_result(
    outputs: dict[str, np.ndarray], num_examples: int
) -> classification_pb2.ClassificationResult:
    """PostProcessClassificationResult."""
    classes, scores = outputs.get(CLASSES), outputs.get(SCORES)
    if classes is not None:
        _check_matrix("classes", classes, "DT_STRING", num_examples)
    if scores is not None:
        _check_matrix("scores", scores, "DT_FLOAT", num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    result = classification_pb2.ClassificationResult()
    for i in range(num_examples):
        row = result.classifications.add()
        for c in range(width):
            item = row.classes.add()
            if classes is not None:
                label = classes[i, c]
                item.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                item.score = float(scores[i, c])
    return result


def regression_result(outputs: dict[str, np.ndarray], num_examples: int) -> regression_pb2.RegressionResult:
    """PostProcessRegressionResult."""
    values = outputs[OUTPUTS]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{_shape(values)}"
        )
    if values.shape[0] != num_examples:
        raise invalid(
            f"Input batch size did not match output batch size: {num_examples} vs. {values.shape[0]}"
        )
    if _dtype_name(values) != "DT_FLOAT":
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(values)}")
    result = regression_pb2.RegressionResult()
    for value in values.reshape(-1):
        result.regressions.add().value = float(value)
    return result


def _model_spec(name: str, signature_name: str, version: int) -> model_pb2.ModelSpec:
    """MakeModelSpec: an empty signature name is reported as serving_default."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name or DEFAULT_SIGNATURE)
    spec.version.value = version
    return spec


class Inference:
    """The three tf.Example APIs over the models a ModelManager serves."""

    def __init__(self, manager: ModelManager, metrics: m.Metrics, options: InferenceOptions) -> None:
        self.manager = manager
        self.metrics = metrics
        self.options = options

    def _run(
        self,
        loaded: Loaded,
        model: str,
        api: str,
        signature: str,
        request_input: input_pb2.Input,
        fetch: list[str],
    ) -> tuple[dict[str, np.ndarray], int]:
        examples = serialized_examples(request_input)
        start = time.perf_counter()
        outputs = loaded.run(signature, {INPUTS: examples})
        if api:
            self.metrics.observe(m.RUNTIME_LATENCY, (time.perf_counter() - start) * 1e6, model, api, "TF1")
        return {alias: np.asarray(outputs[alias]) for alias in fetch}, len(examples)

    def classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> classification_pb2.ClassificationResponse:
        response = classification_pb2.ClassificationResponse()
        outputs, count = self._run_examples(request, "Classify", check_classification, response)
        response.result.CopyFrom(classification_result(outputs, count))
        return response

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        response = regression_pb2.RegressionResponse()
        outputs, count = self._run_examples(request, "Regress", check_regression, response)
        response.result.CopyFrom(regression_result(outputs, count))
        return response

    def _run_examples(
        self, request: Any, api: str, check: Callable[..., Any], response: Any
    ) -> tuple[dict[str, np.ndarray], int]:
        """Classify and Regress alike: the signature checked by ``check``, the examples run, and the
        response's model spec filled; returns the fetched outputs and the number of examples."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        loaded = self.manager.get(spec.name, requested_version(spec))
        sig = _lookup(loaded, spec.signature_name)
        fetch = check(sig, self.options)
        key = spec.signature_name or DEFAULT_SIGNATURE
        outputs, count = self._run(loaded, spec.name, api, key, request.input, fetch)
        response.model_spec.CopyFrom(_model_spec(spec.name, spec.signature_name, loaded.servable.version))
        return outputs, count

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest
    ) -> inference_pb2.MultiInferenceResponse:
        """TensorFlowMultiInferenceRunner::Infer: every task on one model, each signature once."""
        first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        loaded = self.manager.get(first.name, requested_version(first))
        model_name = ""
        seen: set[str] = set()
        plans: list[tuple[inference_pb2.InferenceTask, str, list[str]]] = []
        for task in request.tasks:
            name = task.model_spec.name
            if not name:
                raise invalid("Found ModelSpec with an empty model name.")
            if model_name and name != model_name:
                raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            model_name = name
            key = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if key in seen:
                raise invalid(f"Duplicate evaluation of signature: {key}")
            seen.add(key)
            sig = loaded.servable.signature_defs.get(key)
            if sig is None:
                raise invalid(f"Requested signature not found in model graph: {key}")
            if task.method_name == CLASSIFY_METHOD:
                fetch = check_classification(sig, self.options)
            elif task.method_name == REGRESS_METHOD:
                fetch = check_regression(sig, self.options)
            else:
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}"
                )
            plans.append((task, key, fetch))
        response = inference_pb2.MultiInferenceResponse()
        for task, key, fetch in plans:
            outputs, count = self._run(loaded, model_name, "", key, request.input, fetch)
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                result.classification_result.CopyFrom(classification_result(outputs, count))
            else:
                result.regression_result.CopyFrom(regression_result(outputs, count))
            result.model_spec.CopyFrom(
                _model_spec(task.model_spec.name, task.model_spec.signature_name, loaded.servable.version)
            )
        return response
