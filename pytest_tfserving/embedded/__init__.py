"""Our TF-Serving-compatible server: ``python -m pytest_tfserving.embedded <model server flags>``.

Clients see tensorflow_model_server: same flags, gRPC services, REST API, Prometheus metrics and
readiness log lines; inference is real TensorFlow (SavedModel) or LiteRT (model.tflite).
"""

from __future__ import annotations

from pytest_tfserving.embedded.flags import FlagError, Flags, parse_flags

GRPC_READY_PREFIX = "Running gRPC ModelServer at "
REST_READY_PREFIX = "Exporting HTTP/REST API at:"

__all__ = ["GRPC_READY_PREFIX", "REST_READY_PREFIX", "FlagError", "Flags", "parse_flags"]
