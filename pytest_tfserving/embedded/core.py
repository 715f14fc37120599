"""What gRPC and REST share: find the servable, check the request against its signature, run it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pytest_tfserving.embedded import metrics as m
from pytest_tfserving.embedded.errors import invalid
from pytest_tfserving.embedded.manager import ModelManager
from pytest_tfserving.embedded.servables import Signature, signature


@dataclass(frozen=True)
class Prediction:
    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


class ServingCore:
    def __init__(self, manager: ModelManager, metrics: m.Metrics, tensor_content: bool = False) -> None:
        self.manager = manager
        self.metrics = metrics
        self.tensor_content = tensor_content  # --enable_serialization_as_tensor_content (gRPC Predict)

    def signature(self, model: str, version: int | None, signature_name: str) -> Signature:
        return signature(self.manager.get(model, version).servable, signature_name)

    def predict(
        self,
        model: str,
        version: int | None,
        signature_name: str,
        inputs: dict[str, np.ndarray],
        output_filter: tuple[str, ...] = (),
    ) -> Prediction:
        loaded = self.manager.get(model, version)
        sig = signature(loaded.servable, signature_name)
        sig.check_inputs(inputs)
        for alias in output_filter:
            if alias not in sig.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                    f"{{{','.join(sorted(sig.outputs))}}}."
                )
        if len(set(output_filter)) != len(output_filter):
            raise invalid("duplicate output tensor alias in output_filter")
        start = time.perf_counter()
        outputs = loaded.run(sig.name, inputs)
        self.metrics.observe(m.RUNTIME_LATENCY, (time.perf_counter() - start) * 1e6, model, "Predict", "TF1")
        if output_filter:
            outputs = {k: outputs[k] for k in output_filter}
        return Prediction(loaded.servable.version, sig.name, outputs)
