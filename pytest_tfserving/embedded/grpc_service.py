"""PredictionService and ModelService over gRPC with tensorflow-serving-api's generated stubs.

Implemented: Predict, GetModelMetadata, GetModelStatus. Classify, Regress, MultiInference and
HandleReloadConfigRequest answer UNIMPLEMENTED (the generated base class does that).
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import Any

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from pytest_tfserving.embedded.core import ServingCore
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.tensors import to_numpy, to_proto

SIGNATURE_DEF_FIELD = "signature_def"
MAX_MESSAGE = 2**31 - 1


def _version(spec: Any) -> int | None:
    if spec.HasField("version"):
        return int(spec.version.value)
    if spec.version_label:
        raise invalid(f"Unrecognized servable version label: {spec.version_label}")
    return None


def _abort(context: grpc.ServicerContext, error: ServingError) -> None:
    context.abort(error.code, error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        name = request.model_spec.name
        try:
            inputs = {alias: to_numpy(proto, alias) for alias, proto in request.inputs.items()}
            result = self.core.predict(
                name,
                _version(request.model_spec),
                request.model_spec.signature_name,
                inputs,
                tuple(request.output_filter),
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = result.version
            response.model_spec.signature_name = result.signature_name
            for alias, value in result.outputs.items():
                response.outputs[alias].CopyFrom(to_proto(value))
        except ServingError as error:
            self.core.metrics.request(name, "Predict", "GRPC", error.status_name, 0)
            _abort(context, error)
        except Exception as exc:  # a bug must not kill the worker: INTERNAL like a C++ status
            self.core.metrics.request(name, "Predict", "GRPC", "INTERNAL", 0)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        self.core.metrics.request(name, "Predict", "GRPC", "OK", (time.perf_counter() - start) * 1e6)
        return response

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            return model_metadata(self.core, request)
        except ServingError as error:
            _abort(context, error)


def model_metadata(
    core: ServingCore, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataImpl: only the signature_def field exists."""
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid(f"Metadata field {field} is not supported")
    loaded = core.manager.get(request.model_spec.name, _version(request.model_spec))
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = loaded.servable.version
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sdef in loaded.servable.signature_defs.items():
        sig_map.signature_def[key].CopyFrom(sdef)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(sig_map)
    return response


def model_status(
    core: ServingCore, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatusImpl: AVAILABLE for every loaded version, newest first."""
    spec = request.model_spec
    if not spec.name:
        raise invalid("Missing model name in request.")
    versions = core.manager.version_states(spec.name, _version(spec))
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in versions:
        status = response.model_version_status.add()
        status.version = version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        status.status.error_code = 0
        status.status.error_message = ""
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            return model_status(self.core, request)
        except ServingError as error:
            _abort(context, error)


def start_grpc(core: ServingCore, port: int, max_threads: int) -> tuple[grpc.Server, int]:
    """A threaded gRPC server on 0.0.0.0:port (0 = a free port); returns it and the bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
    bound = server.add_insecure_port(f"0.0.0.0:{port}")
    if bound == 0:
        raise OSError(f"could not bind gRPC port 0.0.0.0:{port} (in use?)")
    server.start()
    return server, bound
