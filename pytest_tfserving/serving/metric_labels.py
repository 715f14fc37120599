"""Which series of ``:tensorflow:serving:request_latency`` hold a load's own requests.

TF Serving 2.19.1 labels the histogram ``{model_name, API, entrypoint}``. Over gRPC
(prediction_service_impl.cc) API is the RPC name: "Predict", "Classify", "Regress" and entrypoint
"GRPC". Over REST (http_server.cc) API is the method from the URL as written there, lower case:
"predict", "classify", "regress", and entrypoint "REST"; the status and metadata GETs
(``/v1/models/m``, ``.../metadata``, readiness polls) land in the *same model's* histogram with
API "". Selecting by model name alone therefore mixes those GETs, and the other protocol's and
other APIs' requests, into a load's server-side latency; select with ``request_latency_labels``.
"""

from __future__ import annotations

from typing import Literal

Protocol = Literal["grpc", "rest"]
Method = Literal["predict", "classify", "regress"]

_GRPC_API: dict[str, str] = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


def request_latency_labels(model_name: str, protocol: Protocol, method: Method = "predict") -> dict[str, str]:
    """The label set of ``model_name``'s ``method`` requests over ``protocol`` in request_latency."""
    if method not in _GRPC_API:
        raise ValueError(f"method {method!r} has no request_latency series; use one of {sorted(_GRPC_API)}")
    if protocol == "grpc":
        return {"model_name": model_name, "API": _GRPC_API[method], "entrypoint": "GRPC"}
    if protocol == "rest":
        return {"model_name": model_name, "API": method, "entrypoint": "REST"}
    raise ValueError(f"protocol {protocol!r} is not 'grpc' or 'rest'")
