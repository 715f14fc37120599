"""model.tflite served like TF Serving 2.19.1's TfLiteSession.

Signatures: the SignatureDefs stored in the model's ``signature_defs_metadata`` metadata (a
flexbuffer map of serialized SignatureDef protos, what tensorflow/lite/tools/signature writes). A
model without them gets one generated ``serving_default`` whose aliases are the interpreter's input
and output tensor names (``serving_default_images:0`` -> alias ``serving_default_images``) with the
tensors' static shapes (batch 1), as upstream generates it. TFLite's own signature runners are not
used: upstream does not read them either.

Execution: ``--num_tflite_pools`` single-threaded interpreters (at least one); a request takes a free
one, resizes the inputs it feeds when their shape differs, invokes, and copies the outputs. With
``--num_tflite_interpreters_per_pool`` > 1 upstream puts a batch scheduler in front that splits
large batches; here a request larger than that split size is cut into chunks run on free interpreters
at once (requests are not merged with each other). Interpreters are never shared between threads.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

from pytest_tfserving.embedded.errors import invalid
from pytest_tfserving.embedded.servables import PREDICT_METHOD, Signature, TensorSpec, tensor_info
from pytest_tfserving.embedded.tensors import tf_dtype

TFLITE_FILE = "model.tflite"
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"
DEFAULT_SIGNATURE = "serving_default"
INITIAL_BATCH_SIZE = 500  # tflite_interpreter_pool.h kInitialBatchSize


def signature_defs_from_model(content: bytes) -> dict[str, meta_graph_pb2.SignatureDef]:
    """tflite::GetSignatureDefMap: the SignatureDefs in the model's metadata ({} when it has none)."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is None or entry.Name().decode() != SIGNATURE_DEFS_METADATA:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength():
            raw = buffer.DataAsNumpy().tobytes()
        else:  # a model over 2 GB keeps its buffers after the flatbuffer
            raw = content[buffer.Offset() : buffer.Offset() + buffer.Size()]
        found: dict[str, meta_graph_pb2.SignatureDef] = {}
        table = flexbuffers.GetRoot(raw).AsMap
        for key, value in zip(table.Keys, table.Values, strict=True):
            signature = meta_graph_pb2.SignatureDef()
            signature.ParseFromString(value.AsStringBytes)
            found[key.AsKey] = signature
        return found
    return {}


def legacy_name(name: str) -> str:
    """TfToTfLiteLegacyTensorName: "x:0" -> "x" (early converters dropped the output index)."""
    return name.split(":", 1)[0]


def _resolve(tensors: dict[str, int], name: str, what: str) -> int:
    """FixTfLiteTensorName: the tensor index of ``name``, or of its legacy name."""
    for candidate in (name, legacy_name(name)):
        if candidate in tensors:
            return tensors[candidate]
    raise ValueError(f"{what} references an unknown tensor: Unknown tensor '{name}'.")


class _InterpreterThread:
    """One single-threaded interpreter and the one thread that ever touches it."""

    def __init__(self, content: bytes, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[Any], Any], Future[Any]] | None] = queue.SimpleQueue()
        ready: Future[Any] = Future()
        self._thread = threading.Thread(target=self._loop, args=(content, ready), name=name, daemon=True)
        self._thread.start()
        self.details: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ready.result()

    def _loop(self, content: bytes, ready: Future[Any]) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=content, num_threads=1)
            interpreter.allocate_tensors()
            ready.set_result((interpreter.get_input_details(), interpreter.get_output_details()))
        except BaseException as exc:
            ready.set_exception(exc)
            return
        while (job := self._jobs.get()) is not None:
            function, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(interpreter))
                except BaseException as exc:
                    future.set_exception(exc)

    def submit(self, function: Callable[[Any], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((function, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)


def _invoke(
    feeds: list[tuple[int, np.ndarray]], fetches: list[tuple[str, int]], interpreter: Any
) -> dict[str, np.ndarray]:
    """SetInputAndInvokeMiniBatch: resize what changed shape, copy in, invoke, copy out."""
    resized = False
    shapes = {int(d["index"]): tuple(d["shape"]) for d in interpreter.get_input_details()}
    for index, array in feeds:
        if shapes[index] != array.shape:
            interpreter.resize_tensor_input(index, list(array.shape))
            resized = True
    if resized:
        interpreter.allocate_tensors()
    for index, array in feeds:
        interpreter.set_tensor(index, array)
    interpreter.invoke()
    return {alias: np.array(interpreter.get_tensor(index)) for alias, index in fetches}


def _tensor_spec(detail: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    return tf_dtype(np.empty(0, dtype=detail["dtype"])), tuple(int(d) for d in detail["shape"])


class TfliteServable:
    """A model.tflite version: ``pools`` single-threaded interpreters (at least one)."""

    def __init__(self, path: Path, version: int, pools: int, per_pool: int) -> None:
        self.version = version
        self.path = path
        content = path.read_bytes()
        self._workers = [_InterpreterThread(content, f"tflite-v{version}-i{i}") for i in range(max(1, pools))]
        self._free: queue.Queue[_InterpreterThread] = queue.Queue()
        self._taking = threading.Lock()
        for worker in self._workers:
            self._free.put(worker)
        inputs, outputs = self._workers[0].details
        input_index = {str(d["name"]): int(d["index"]) for d in inputs}
        output_index = {str(d["name"]): int(d["index"]) for d in outputs}
        defs = signature_defs_from_model(content)
        if not defs:
            defs = {DEFAULT_SIGNATURE: self._generated(inputs, outputs)}
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = defs
        self.signatures: dict[str, Signature] = {}
        self._bindings: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        for key, sdef in defs.items():
            feeds = {a: _resolve(input_index, i.name, f"Signature input {a}") for a, i in sdef.inputs.items()}
            fetches = {
                a: _resolve(output_index, i.name, f"Signature output {a}") for a, i in sdef.outputs.items()
            }
            self._bindings[key] = (feeds, fetches)
            self.signatures[key] = Signature(
                key,
                {a: TensorSpec.from_info(i) for a, i in sdef.inputs.items()},
                {a: TensorSpec.from_info(i) for a, i in sdef.outputs.items()},
            )
        first = inputs[0]["shape"] if inputs and len(inputs[0]["shape"]) else [1]
        model_batch = int(first[0])
        self._chunk = model_batch if model_batch > 1 else math.ceil(INITIAL_BATCH_SIZE / max(1, per_pool))
        self._split = per_pool > 1

    @staticmethod
    def _generated(
        inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
    ) -> meta_graph_pb2.SignatureDef:
        """The signature upstream makes up for a model without SignatureDefs."""
        sdef = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for details, target in ((inputs, sdef.inputs), (outputs, sdef.outputs)):
            for detail in details:
                dtype, shape = _tensor_spec(detail)
                target[legacy_name(str(detail["name"]))].CopyFrom(
                    tensor_info(str(detail["name"]), dtype, shape)
                )
        return sdef

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds_by_alias, fetches_by_alias = self._bindings[signature]
        fetches = list(fetches_by_alias.items())
        batch = min((a.shape[0] for a in inputs.values() if a.ndim), default=1)
        parts = math.ceil(batch / self._chunk) if self._split and batch > self._chunk else 1
        parts = min(parts, len(self._workers))
        chunks = [
            [(feeds_by_alias[alias], piece) for alias, piece in zip(inputs, pieces, strict=True)]
            for pieces in zip(
                *(np.array_split(a, parts) if a.ndim else [a] * parts for a in inputs.values()), strict=True
            )
        ]
        with self._taking:  # one request at a time takes its interpreters: no two wait on each other
            workers = [self._free.get() for _ in chunks]
        try:
            futures = [
                worker.submit(functools.partial(_invoke, feeds, fetches))
                for worker, feeds in zip(workers, chunks, strict=True)
            ]
            try:
                results = [f.result() for f in futures]
            except (ValueError, RuntimeError) as exc:
                raise invalid(f"TFLite interpreter failed: {exc}") from exc
        finally:
            for worker in workers:
                self._free.put(worker)
        if len(results) == 1:
            return results[0]
        return {alias: np.concatenate([r[alias] for r in results]) for alias, _ in fetches}

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
