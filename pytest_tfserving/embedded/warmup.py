"""--enable_model_warmup: replay ``assets.extra/tf_serving_warmup_requests`` before serving a version."""

from __future__ import annotations

from pathlib import Path

from pytest_tfserving.embedded.servables import DEFAULT_SIGNATURE, Servable
from pytest_tfserving.embedded.tensors import to_numpy

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def warm_up(servable: Servable, version_dir: Path, iterations: int) -> int:
    """Run every PredictRequest in the warmup file ``iterations`` times; returns requests replayed."""
    path = version_dir / WARMUP_FILE
    if not path.is_file():
        return 0
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    replayed = 0
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        if not log.HasField("predict_log"):
            continue
        request = log.predict_log.request
        inputs = {alias: to_numpy(proto, alias) for alias, proto in request.inputs.items()}
        for _ in range(max(1, iterations)):
            servable.run(request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs)
        replayed += 1
    return replayed
