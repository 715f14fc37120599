"""Request payloads built once before the run: seeded random tensors shaped by the model's signature.

Every request body is serialized up front (PredictRequest bytes for gRPC, JSON bytes for REST; for
Classify/Regress, ``load.example_payloads`` from the user's serialized tf.Example), so the measured loop
spends no CPU on encoding. ``repeat_share`` makes a share of requests repeat an input sent
earlier, which is what a prediction cache sees in production.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pytest_tfserving.load.example_payloads import ExamplePayloadError, example_bodies
from pytest_tfserving.load.wire import (
    DTYPE_BY_NAME,
    LOAD_METHODS,
    METADATA_METHOD,
    NUMPY_BY_NAME,
    TensorSpec,
    decode_signatures,
    encode_metadata_request,
    encode_predict_request,
)


class PayloadError(ValueError):
    """The signature or the user's payloads cannot be turned into requests; the message says why."""


@dataclass(frozen=True)
class PayloadOptions:
    """How to build the request pool.

    ``pool_size`` distinct inputs are generated (seeded). A request repeats an earlier input with
    probability ``repeat_share``; once all ``pool_size`` inputs have been sent the sequence starts over,
    so for a cache test keep ``pool_size >= requests * (1 - repeat_share)`` if misses must stay misses.
    ``inputs`` replaces generation with the user's own tensors (one dict of arrays per request).
    ``shapes`` fills unknown (-1) non-batch dimensions, per input name.
    ``examples`` is what Classify and Regress loads send (``LoadConfig(method="classify")``): one entry
    per distinct request, each a list of serialized tf.Example (``example.SerializeToString()``), e.g.
    ``examples=[[ex1, ex2], [ex3]]``; requests cycle through them as through ``inputs``.
    """

    pool_size: int = 64
    repeat_share: float = 0.0
    batch_size: int = 1
    seed: int = 0
    inputs: Sequence[Mapping[str, npt.ArrayLike]] | None = None
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    value_range: tuple[float, float] = (0.0, 1.0)
    examples: Sequence[Sequence[bytes]] | None = None

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise PayloadError(f"pool_size must be >= 1, got {self.pool_size}")
        if not 0.0 <= self.repeat_share <= 1.0:
            raise PayloadError(f"repeat_share must be in [0, 1], got {self.repeat_share}")
        if self.batch_size < 1:
            raise PayloadError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.inputs is not None and len(self.inputs) == 0:
            raise PayloadError("inputs is empty: give at least one dict of arrays, or leave it None")
        if self.inputs is not None and self.examples is not None:
            raise PayloadError(
                "give inputs (tensors, for predict) or examples (serialized tf.Example, for classify "
                "and regress), not both"
            )


@dataclass(frozen=True)
class RequestPool:
    """Pre-serialized bodies plus the order they are sent in; ``body(i)`` is the i-th request."""

    bodies: tuple[bytes, ...]
    order: npt.NDArray[np.int32]  # cycled: request i sends bodies[order[i % len(order)]]
    method: str = "predict"  # what the bodies are for: "predict", "classify" or "regress"

    def __post_init__(self) -> None:
        if self.method not in LOAD_METHODS:
            raise PayloadError(f"method must be one of {', '.join(LOAD_METHODS)}, got {self.method!r}")

    def body(self, i: int) -> bytes:
        return self.bodies[int(self.order[i % len(self.order)])]

    def repeat_share(self) -> float:
        """Share of requests in one cycle of ``order`` that repeat an earlier input."""
        return 1.0 - len(np.unique(self.order)) / len(self.order)


# ------------------------------------------------------------------------------------------ metadata
def fetch_signature(
    target: str,
    protocol: str,
    model_name: str,
    signature_name: str = "serving_default",
    timeout_s: float = 10.0,
) -> dict[str, TensorSpec]:
    """Input name -> TensorSpec of one signature, via GetModelMetadata (gRPC) or /metadata (REST)."""
    if protocol == "grpc":
        signatures = _grpc_signatures(target, model_name, timeout_s)
    elif protocol == "rest":
        signatures = _rest_signatures(target, model_name, timeout_s)
    else:
        raise PayloadError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
    if signature_name not in signatures:
        raise PayloadError(
            f"model {model_name!r} has no signature {signature_name!r}; it has {sorted(signatures)}"
        )
    return signatures[signature_name]


def _grpc_signatures(target: str, model_name: str, timeout_s: float) -> dict[str, dict[str, TensorSpec]]:
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METADATA_METHOD)
        try:
            response = call(encode_metadata_request(model_name), timeout=timeout_s)
        except grpc.RpcError as exc:
            raise PayloadError(
                f"GetModelMetadata for {model_name!r} at {target} failed: {exc.code().name} {exc.details()}"
            ) from exc
    return decode_signatures(response)


def _rest_signatures(url: str, model_name: str, timeout_s: float) -> dict[str, dict[str, TensorSpec]]:
    address = f"{url.rstrip('/')}/v1/models/{model_name}/metadata"
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise PayloadError(f"GET {address} failed: HTTP {exc.code} {exc.read()[:300]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PayloadError(f"GET {address} failed: {exc}") from exc
    try:
        sigdefs = data["metadata"]["signature_def"]["signature_def"]
        return {
            sig: {
                name: TensorSpec(info["dtype"], _rest_shape(info.get("tensor_shape", {})))
                for name, info in sigdef.get("inputs", {}).items()
            }
            for sig, sigdef in sigdefs.items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise PayloadError(f"unexpected metadata JSON from {address}: {str(data)[:300]}") from exc


def _rest_shape(shape: Mapping[str, object]) -> tuple[int, ...] | None:
    if shape.get("unknown_rank"):
        return None
    dims = shape.get("dim", [])
    assert isinstance(dims, list)
    return tuple(int(d.get("size", 0)) for d in dims)


# ---------------------------------------------------------------------------------------- generation
def _concrete_shape(name: str, spec: TensorSpec, options: PayloadOptions) -> tuple[int, ...]:
    if name in options.shapes:
        return (options.batch_size, *(int(d) for d in options.shapes[name]))
    if spec.shape is None:
        raise PayloadError(f"input {name!r} has unknown rank; pass shapes={{{name!r}: (...)}} without batch")
    if not spec.shape:
        return ()
    rest = spec.shape[1:]
    if any(d < 0 for d in rest):
        raise PayloadError(
            f"input {name!r} has unknown dimensions {spec.shape}; pass shapes={{{name!r}: (...)}} "
            "giving the non-batch dimensions"
        )
    return (options.batch_size, *rest)


def _random_tensor(
    rng: np.random.Generator, spec: TensorSpec, shape: tuple[int, ...], value_range: tuple[float, float]
) -> np.ndarray:
    low, high = value_range
    if spec.dtype == "DT_STRING":
        return np.array(
            [f"s{v}".encode() for v in rng.integers(0, 1 << 30, int(np.prod(shape)))], dtype=object
        ).reshape(shape)
    if spec.dtype not in NUMPY_BY_NAME:
        raise PayloadError(f"cannot generate dtype {spec.dtype}; supported: {sorted(DTYPE_BY_NAME)}")
    dtype = np.dtype(NUMPY_BY_NAME[spec.dtype])
    if dtype.kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    lo, hi = max(int(low), int(info.min)), min(int(high), int(info.max))
    return rng.integers(lo, max(hi, lo), shape, endpoint=True).astype(dtype)


def generate_inputs(
    signature: Mapping[str, TensorSpec], options: PayloadOptions
) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(options.seed)
    shapes = {name: _concrete_shape(name, spec, options) for name, spec in signature.items()}
    return [
        {
            name: _random_tensor(rng, spec, shapes[name], options.value_range)
            for name, spec in signature.items()
        }
        for _ in range(options.pool_size)
    ]


def repeat_order(n_distinct: int, repeat_share: float, seed: int) -> npt.NDArray[np.int32]:
    """Send order: each request is new with probability 1 - repeat_share, else a random earlier one."""
    if repeat_share >= 1.0:
        return np.zeros(1, dtype=np.int32)
    rng = np.random.default_rng(seed + 1)
    order: list[int] = []
    used = 0
    while used < n_distinct:
        if used and rng.random() < repeat_share:
            order.append(int(rng.integers(0, used)))
        else:
            order.append(used)
            used += 1
    return np.asarray(order, dtype=np.int32)


def _user_inputs(signature: Mapping[str, TensorSpec], options: PayloadOptions) -> list[dict[str, np.ndarray]]:
    assert options.inputs is not None
    result = []
    for k, given in enumerate(options.inputs):
        missing, unknown = set(signature) - set(given), set(given) - set(signature)
        if missing or unknown:
            raise PayloadError(
                f"payload {k} does not match the signature: missing {sorted(missing)}, unknown "
                f"{sorted(unknown)}; the signature's inputs are {sorted(signature)}"
            )
        result.append({name: np.asarray(value) for name, value in given.items()})
    return result


def _json_body(signature_name: str, inputs: Mapping[str, np.ndarray]) -> bytes:
    def plain(array: np.ndarray) -> object:
        if array.dtype == object:
            return [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]
        return array.tolist()

    body = {"signature_name": signature_name, "inputs": {name: plain(a) for name, a in inputs.items()}}
    return json.dumps(body, separators=(",", ":")).encode()


def build_pool(
    signature: Mapping[str, TensorSpec],
    protocol: str,
    model_name: str,
    signature_name: str,
    options: PayloadOptions,
) -> RequestPool:
    """Serialize every distinct input once for ``protocol`` ("grpc" -> PredictRequest, "rest" -> JSON)."""
    if not signature:
        raise PayloadError(f"signature {signature_name!r} of {model_name!r} has no inputs")
    inputs = (
        _user_inputs(signature, options)
        if options.inputs is not None
        else generate_inputs(signature, options)
    )
    if protocol == "grpc":
        bodies = tuple(
            encode_predict_request(
                model_name, signature_name, {n: (a, signature[n].dtype) for n, a in x.items()}
            )
            for x in inputs
        )
    elif protocol == "rest":
        bodies = tuple(_json_body(signature_name, x) for x in inputs)
    else:
        raise PayloadError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
    return RequestPool(bodies, repeat_order(len(bodies), options.repeat_share, options.seed))


def build_example_pool(
    method: str, protocol: str, model_name: str, signature_name: str, options: PayloadOptions
) -> RequestPool:
    """Serialize ``options.examples`` once as Classify or Regress requests for ``protocol``. No signature
    is fetched: a wrong one is the server's error, counted per request like any other."""
    if method not in ("classify", "regress"):
        raise PayloadError(f"tf.Example requests are for 'classify' or 'regress', not {method!r}")
    if options.examples is None:
        raise PayloadError(
            f"method={method!r} sends serialized tf.Example: pass PayloadOptions(examples=[[example."
            "SerializeToString()], ...]), one list of examples per request"
        )
    try:
        bodies = example_bodies(options.examples, protocol, model_name, signature_name)
    except ExamplePayloadError as exc:
        raise PayloadError(str(exc)) from None
    return RequestPool(bodies, repeat_order(len(bodies), options.repeat_share, options.seed), method)
