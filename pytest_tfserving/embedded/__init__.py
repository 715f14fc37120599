"""Our TF-Serving-compatible server: ``python -m pytest_tfserving.embedded <model server flags>``.

Clients see tensorflow_model_server: same flags, gRPC services, REST API, Prometheus metrics and
readiness log lines (their format: process/ready_line.py); inference is real TensorFlow (SavedModel)
or LiteRT (model.tflite).
"""

from __future__ import annotations

from pytest_tfserving.embedded.flags import FlagError, Flags, parse_flags

__all__ = ["FlagError", "Flags", "parse_flags"]
