"""A loaded model version: SavedModel through TensorFlow, or model.tflite through LiteRT pools.

``Servable.run`` takes and returns numpy arrays keyed by signature alias; ``signature_defs`` are the
SignatureDef protos clients see in GetModelMetadata (read from saved_model.pb itself for SavedModels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2

from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.tensors import dtype_name, numpy_dtype

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
_INTERNAL_SIGNATURES = frozenset({"__saved_model_init_op", "__saved_model_train_op"})


@dataclass(frozen=True)
class TensorSpec:
    """What a signature expects for one alias: dtype (TF enum) and shape (None = any size/rank)."""

    dtype: int
    shape: tuple[int | None, ...] | None

    @staticmethod
    def from_info(info: meta_graph_pb2.TensorInfo) -> TensorSpec:
        shape_proto = info.tensor_shape
        shape = (
            None
            if shape_proto.unknown_rank
            else tuple(None if d.size < 0 else int(d.size) for d in shape_proto.dim)
        )
        return TensorSpec(int(info.dtype), shape)

    def check(self, alias: str, array: np.ndarray) -> None:
        """INVALID_ARGUMENT naming the alias when the dtype cannot feed the signature.

        Sizes are not checked: TF Serving feeds the tensor to Session::Run as sent and TensorFlow does
        not hold a fed tensor to its placeholder's shape (TF Serving's own test feeds shape [1] to an
        input declared [?,1]); a size an op cannot take fails in that op, INVALID_ARGUMENT as well.
        One guard stays: a rank other than a declared rank of 3 or more (images, volumes) is refused
        here, because the oneDNN kernels of pip TensorFlow abort the whole process on it (a CHECK in
        MklConvOp) where TF Serving's kernels answer INVALID_ARGUMENT."""
        want = numpy_dtype(self.dtype)
        if array.dtype != want and not (want == np.object_ and array.dtype.kind in "OSU"):
            raise invalid(
                f"Expects arg[{alias}] to be {dtype_name(self.dtype)} but {_np_name(array.dtype)} is provided"
            )
        if self.shape is not None and len(self.shape) >= 3 and array.ndim != len(self.shape):
            want_shape = "[" + ",".join("?" if d is None else str(d) for d in self.shape) + "]"
            raise invalid(
                f"input {alias} has shape {list(array.shape)} but the signature expects {want_shape}"
            )


def _np_name(dtype: np.dtype[Any]) -> str:
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        """TF Serving's PreProcessPrediction checks: same alias set, then the dtype per alias."""
        if set(inputs) != set(self.inputs):
            sent, expected = sorted(inputs), sorted(self.inputs)
            extra = sorted(set(inputs) - set(self.inputs))
            missing = sorted(set(self.inputs) - set(inputs))
            if len(inputs) == len(self.inputs):
                raise invalid(
                    f"input tensor alias not found in signature: {extra[0]}. Inputs expected to be in "
                    f"the set {{{','.join(expected)}}}."
                )
            raise invalid(
                f"input size does not match signature: {len(inputs)}!={len(self.inputs)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). Sent extra: "
                f"{{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        for alias, array in inputs.items():
            self.inputs[alias].check(alias, array)


class Servable(Protocol):
    """One loaded version of one model."""

    version: int
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    signatures: dict[str, Signature]

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def signature(servable: Servable, name: str) -> Signature:
    """The signature a request names ("" = serving_default); FAILED_PRECONDITION as upstream if absent."""
    key = name or DEFAULT_SIGNATURE
    found = servable.signatures.get(key)
    if found is None:
        import grpc

        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')
    return found


def read_signature_defs(path: Path, tags: set[str]) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDef map of the meta graph with ``tags`` in ``path``/saved_model.pb."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    for graph in saved.meta_graphs:
        if set(graph.meta_info_def.tags) == tags:
            return dict(graph.signature_def)
    raise ValueError(f"{path}: no meta graph with tags {sorted(tags)}")


class SavedModelServable:
    """A SavedModel's MetaGraph in a private Graph + v1 Session, run as tensorflow_model_server does.

    One session callable per signature, fed and fetched by the SignatureDef's tensor names: numpy in,
    numpy out, no eager dispatch per request. ``Session.run`` is thread-safe, so concurrent
    requests and batch threads share one session without Python locks. The session's thread pools come
    from ``tf.config.threading`` (set by the server's parallelism flags before any model loads), the
    same place the eager runtime took them from.
    """

    def __init__(
        self,
        path: Path,
        version: int,
        tags: tuple[str, ...] = ("serve",),
        overrides: config_pb2.ConfigProto | None = None,
    ) -> None:
        """``overrides``: the server's session options (--tensorflow_session_config_file, GPU memory
        fraction), merged over the process-wide config (proto3: unset fields change nothing)."""
        import tensorflow as tf

        self.version = version
        self.path = path
        self._errors: tuple[type[BaseException], ...] = (
            tf.errors.InvalidArgumentError,
            ValueError,
            TypeError,
        )
        self.signature_defs = read_signature_defs(path, set(tags))  # ValueError naming the tags
        self.session_config = session_config()
        if overrides is not None:
            self.session_config.MergeFrom(overrides)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=self.session_config)
        try:
            with self._graph.as_default():
                tf.compat.v1.saved_model.loader.load(self._session, list(tags), str(path))
            self.signatures: dict[str, Signature] = {}
            self._callables: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable[..., Any]]] = {}
            for key, sig in self.signature_defs.items():
                if key in _INTERNAL_SIGNATURES:
                    continue  # the init op's entry: nothing a request can call (as tf.saved_model.load)
                feeds = tuple(sorted(sig.inputs))
                fetches = tuple(sorted(sig.outputs))
                run = _session_callable(
                    self._session,
                    [sig.inputs[a].name for a in feeds],
                    [sig.outputs[a].name for a in fetches],
                )
                self._callables[key] = (feeds, fetches, run)
                self.signatures[key] = Signature(
                    key,
                    {k: TensorSpec.from_info(v) for k, v in sig.inputs.items()},
                    {k: TensorSpec.from_info(v) for k, v in sig.outputs.items()},
                )
        except BaseException:
            self._session.close()
            raise

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds, fetches, call = self._callables[signature]
        # Callables feed as Session::Run does: aliases and dtypes checked here, shapes by the ops.
        self.signatures[signature].check_inputs(inputs)
        try:
            outputs = call(*[inputs[alias] for alias in feeds])
        except self._errors as exc:
            raise invalid(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
        return dict(zip(fetches, outputs, strict=True))

    def close(self) -> None:
        self._callables.clear()
        self._session.close()


def _session_callable(session: Any, feeds: list[str], fetches: list[str]) -> Callable[..., Any]:
    """``Session::MakeCallable`` for feeds/fetches by tensor name: one C++ call per run (numpy in, list
    of numpy out). Public ``make_callable`` with a feed_list goes through ``Session.run``'s Python feed and
    fetch handling instead, about 2x the per-call cost for a small model; it is the fallback."""
    options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
    make = getattr(session, "_make_callable_from_options", None)
    if make is None:
        return session.make_callable(fetches, feed_list=feeds)
    return make(options)


def session_config() -> config_pb2.ConfigProto:
    """The process-wide TensorFlow config (thread pools from ``tf.config.threading``, soft placement,
    GPU options) as a ConfigProto, so a v1 Session runs with the settings eager code would."""
    config = config_pb2.ConfigProto()
    try:
        from tensorflow.python.eager import context

        config.CopyFrom(context.context().config)
    except (ImportError, AttributeError):  # a TF without that internal: the public thread settings
        import tensorflow as tf

        config.intra_op_parallelism_threads = tf.config.threading.get_intra_op_parallelism_threads()
        config.inter_op_parallelism_threads = tf.config.threading.get_inter_op_parallelism_threads()
        config.allow_soft_placement = True
    return config


def tensor_info(name: str, dtype: int, shape: tuple[int | None, ...]) -> meta_graph_pb2.TensorInfo:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else d) for d in shape]
    return meta_graph_pb2.TensorInfo(
        name=name,
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
    )
