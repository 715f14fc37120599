"""model.tflite served like TF Serving's TfLiteSession: pools of single-threaded interpreters.

``num_tflite_pools`` requests run at once; inside a pool a batch is split across its
``num_tflite_interpreters_per_pool`` interpreters, each owning one thread (TF Serving runs every
interpreter with one thread). Interpreters are never shared between threads.
"""

from __future__ import annotations

import functools
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


class _InterpreterThread:
    """One interpreter and the one thread that ever touches it."""

    def __init__(self, path: Path, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[Any], Any], Future[Any]] | None] = queue.SimpleQueue()
        ready: Future[Any] = Future()
        self._thread = threading.Thread(target=self._loop, args=(path, ready), name=name, daemon=True)
        self._thread.start()
        self.signature_list: dict[str, Any] = ready.result()

    def _loop(self, path: Path, ready: Future[Any]) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=str(path), num_threads=1)
            runners = {key: interpreter.get_signature_runner(key) for key in interpreter.get_signature_list()}
            ready.set_result(
                {key: (r.get_input_details(), r.get_output_details()) for key, r in runners.items()}
            )
        except BaseException as exc:
            ready.set_exception(exc)
            return
        while (job := self._jobs.get()) is not None:
            function, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(runners))
                except BaseException as exc:
                    future.set_exception(exc)

    def submit(self, function: Callable[[Any], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((function, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)


def _invoke(signature: str, inputs: dict[str, np.ndarray], runners: dict[str, Any]) -> dict[str, np.ndarray]:
    return dict(runners[signature](**inputs))


def _spec(detail: dict[str, Any]) -> TensorSpec:
    shape = detail.get("shape_signature", detail["shape"])
    return TensorSpec(
        tf_dtype(np.empty(0, dtype=detail["dtype"])), tuple(None if d < 0 else int(d) for d in shape)
    )


class TfliteServable:
    """A model.tflite version: ``pools`` x ``per_pool`` interpreters, one thread each."""

    def __init__(self, path: Path, version: int, pools: int, per_pool: int) -> None:
        self.version = version
        self.path = path
        self._pools = [
            [_InterpreterThread(path, f"tflite-v{version}-p{p}-i{i}") for i in range(per_pool)]
            for p in range(pools)
        ]
        self._free: queue.Queue[int] = queue.Queue()
        for index in range(pools):
            self._free.put(index)
        details = self._pools[0][0].signature_list
        self.signatures: dict[str, Signature] = {}
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {}
        for key, (inputs, outputs) in details.items():
            sig = Signature(
                key, {k: _spec(v) for k, v in inputs.items()}, {k: _spec(v) for k, v in outputs.items()}
            )
            self.signatures[key] = sig
            sdef = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
            for alias, detail in inputs.items():
                spec = sig.inputs[alias]
                sdef.inputs[alias].CopyFrom(tensor_info(str(detail["name"]), spec.dtype, spec.shape or ()))
            for alias, detail in outputs.items():
                spec = sig.outputs[alias]
                sdef.outputs[alias].CopyFrom(tensor_info(str(detail["name"]), spec.dtype, spec.shape or ()))
            self.signature_defs[key] = sdef

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pool_index = self._free.get()
        try:
            pool = self._pools[pool_index]
            batch = min((a.shape[0] for a in inputs.values() if a.ndim), default=1)
            parts = max(1, min(len(pool), batch))
            chunks = [
                {k: v for k, v in zip(inputs, pieces, strict=True)}
                for pieces in zip(
                    *(np.array_split(a, parts) if a.ndim else [a] * parts for a in inputs.values()),
                    strict=True,
                )
            ]
            futures = [
                worker.submit(functools.partial(_invoke, signature, chunk))
                for worker, chunk in zip(pool, chunks, strict=False)
            ]
            try:
                results = [f.result() for f in futures]
            except (ValueError, RuntimeError) as exc:
                raise invalid(f"TFLite interpreter failed: {exc}") from exc
        finally:
            self._free.put(pool_index)
        if len(results) == 1:
            return {k: np.asarray(v) for k, v in results[0].items()}
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def close(self) -> None:
        for pool in self._pools:
            for worker in pool:
                worker.close()
