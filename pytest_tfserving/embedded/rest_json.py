"""TF Serving's JSON tensor formats: row (``instances``/``predictions``) and columnar
(``inputs``/``outputs``), with ``{"b64": ...}`` for binary strings. Pure functions, no I/O."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from pytest_tfserving.embedded.errors import invalid
from pytest_tfserving.embedded.servables import Signature, TensorSpec
from pytest_tfserving.embedded.tensors import dtype_name, numpy_dtype

_NUMERIC_OK = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}


def _decode_b64(value: Any, alias: str) -> Any:
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f'JSON object for {alias} must be {{"b64": "<base64 string>"}}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid(f"Unable to base64 decode the value for {alias}: {exc}") from None
    if isinstance(value, list):
        return [_decode_b64(v, alias) for v in value]
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"JSON Value: {value!r} is not of expected type: string (input {alias})")


def to_array(value: Any, spec: TensorSpec, alias: str) -> np.ndarray:
    """One JSON value as the signature's dtype; INVALID_ARGUMENT naming the alias when it cannot be."""
    want = numpy_dtype(spec.dtype)
    if want == np.object_:
        decoded = _decode_b64(value, alias)
        try:
            array = np.array(decoded, dtype=object)
        except ValueError as exc:
            raise invalid(f"Input {alias} is not a rectangular list: {exc}") from None
        if any(not isinstance(v, bytes) for v in array.reshape(-1)):
            raise invalid(f"Input {alias} mixes strings with lists of different lengths")
        return array
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise invalid(f"Input {alias} is not a rectangular list of numbers: {exc}") from None
    if array.size and array.dtype.kind not in _NUMERIC_OK.get(want.kind, ""):
        raise invalid(
            f"JSON Value for {alias} (numpy kind {array.dtype.kind!r}) is not of expected type: "
            f"{dtype_name(spec.dtype)}"
        )
    try:
        return array.astype(want, copy=False)
    except (ValueError, OverflowError) as exc:
        raise invalid(f"Input {alias} cannot be converted to {dtype_name(spec.dtype)}: {exc}") from None


def parse_request(body: Any, sig_of: Any) -> tuple[str, dict[str, np.ndarray], bool]:
    """(signature_name, inputs, row_format) from a parsed predict body.

    ``sig_of(signature_name)`` returns the Signature (raises for unknown ones).
    """
    if not isinstance(body, dict):
        raise invalid('JSON Value is not an object; expected {"instances": [...]} or {"inputs": ...}')
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid("'signature_name' must be a string")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise invalid(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Not both 'inputs' and 'instances' can be specified in the request"
        )
    sig: Signature = sig_of(signature_name)
    if has_rows:
        return signature_name, _rows(body["instances"], sig), True
    return signature_name, _columns(body["inputs"], sig), False


def _rows(instances: Any, sig: Signature) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid("'instances' is an empty list; send at least one instance")
    named = all(isinstance(i, dict) and "b64" not in i for i in instances)
    if named:
        keys = set(instances[0])
        if any(set(i) != keys for i in instances):
            raise invalid("Failed to process element: instances have different sets of keys")
        unknown = keys - set(sig.inputs)
        if unknown or keys != set(sig.inputs):
            sig.check_inputs({k: np.empty(0) for k in keys})  # raises with upstream's message
        return {k: to_array([i[k] for i in instances], sig.inputs[k], k) for k in keys}
    if len(sig.inputs) != 1:
        raise invalid(
            f"Expected one input tensor, the signature has {len(sig.inputs)} "
            f"({','.join(sorted(sig.inputs))}); send each instance as an object keyed by input name"
        )
    ((alias, spec),) = sig.inputs.items()
    return {alias: to_array(instances, spec, alias)}


def _columns(inputs: Any, sig: Signature) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and "b64" not in inputs:
        unknown = set(inputs) - set(sig.inputs)
        if unknown or set(inputs) != set(sig.inputs):
            sig.check_inputs({k: np.empty(0) for k in inputs})
        return {k: to_array(v, sig.inputs[k], k) for k, v in inputs.items()}
    if len(sig.inputs) != 1:
        raise invalid(f"Expected one input tensor, the signature has {len(sig.inputs)}; send named inputs")
    ((alias, spec),) = sig.inputs.items()
    return {alias: to_array(inputs, spec, alias)}


def _json_value(array: np.ndarray, alias: str) -> Any:
    if array.dtype.kind in "OSU":
        as_b64 = alias.endswith("_bytes")

        def convert(v: Any) -> Any:
            raw = v if isinstance(v, bytes) else str(v).encode()
            if as_b64:
                return {"b64": base64.b64encode(raw).decode()}
            return raw.decode("utf-8", errors="replace")

        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def response_body(outputs: dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    """``{"predictions": ...}`` (row) or ``{"outputs": ...}`` (columnar) as TF Serving writes them."""
    if not row_format:
        if len(outputs) == 1:
            ((alias, value),) = outputs.items()
            return {"outputs": _json_value(value, alias)}
        return {"outputs": {k: _json_value(v, k) for k, v in outputs.items()}}
    if len(outputs) == 1:
        ((alias, value),) = outputs.items()
        return {"predictions": _json_value(value, alias)}
    sizes = {v.shape[0] if v.ndim else -1 for v in outputs.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise invalid("Tensor outputs have inconsistent batch sizes; use the columnar 'inputs' format")
    columns = {k: _json_value(v, k) for k, v in outputs.items()}
    return {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(sizes.pop())]}
