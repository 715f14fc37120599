"""PredictionService and ModelService over gRPC with tensorflow-serving-api's generated stubs.

Every RPC of TF Serving 2.19.1 is served: Predict, Classify, Regress, MultiInference, GetModelMetadata,
GetModelStatus and HandleReloadConfigRequest. Metrics follow prediction_service_impl.cc: Predict,
Classify and Regress count every request (request_count by status) and time the OK ones
(request_latency with API "Predict"/"Classify"/"Regress", entrypoint "GRPC"); MultiInference and the
metadata/status calls record neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from pytest_tfserving.embedded.core import ServingCore
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.inference import Inference
from pytest_tfserving.embedded.manager import requested_version
from pytest_tfserving.embedded.model_config import ConfigReloader
from pytest_tfserving.embedded.tensors import to_numpy, to_proto

log = logging.getLogger("pytest_tfserving.embedded")

SIGNATURE_DEF_FIELD = "signature_def"
MAX_MESSAGE = 2**31 - 1
Response = TypeVar("Response")


def _abort(context: grpc.ServicerContext, error: ServingError) -> None:
    context.abort(error.code, error.message)


def _timed(
    core: ServingCore, api: str, model: str, context: grpc.ServicerContext, call: Callable[[], Response]
) -> Response:
    """Run one Predict/Classify/Regress with upstream's request_count and request_latency."""
    start = time.perf_counter()
    try:
        response = call()
    except ServingError as error:
        core.metrics.request(model, api, "GRPC", error.status_name, 0)
        _abort(context, error)
        raise  # not reached: abort raises
    except Exception as exc:  # a bug must not kill the worker: INTERNAL like a C++ status
        core.metrics.request(model, api, "GRPC", "INTERNAL", 0)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        raise
    core.metrics.request(model, api, "GRPC", "OK", (time.perf_counter() - start) * 1e6)
    return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore, inference: Inference) -> None:
        self.core = core
        self.inference = inference

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> Any:
        return _timed(self.core, "Predict", request.model_spec.name, context, lambda: self._predict(request))

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        inputs = {alias: to_numpy(proto, alias) for alias, proto in request.inputs.items()}
        result = self.core.predict(
            request.model_spec.name,
            requested_version(request.model_spec),
            request.model_spec.signature_name,
            inputs,
            tuple(request.output_filter),
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = result.version
        response.model_spec.signature_name = result.signature_name
        for alias, value in result.outputs.items():
            response.outputs[alias].CopyFrom(to_proto(value, self.core.tensor_content))
        return response

    def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext
    ) -> Any:
        return _timed(
            self.core, "Classify", request.model_spec.name, context, lambda: self.inference.classify(request)
        )

    def Regress(self, request: regression_pb2.RegressionRequest, context: grpc.ServicerContext) -> Any:
        return _timed(
            self.core, "Regress", request.model_spec.name, context, lambda: self.inference.regress(request)
        )

    def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            return self.inference.multi_inference(request)
        except ServingError as error:
            _abort(context, error)

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
    loaded = core.manager.get(request.model_spec.name, requested_version(request.model_spec))
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
    versions = core.manager.version_states(spec.name, requested_version(spec))
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in versions:
        status = response.model_version_status.add()
        status.version = version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        status.status.error_code = 0
        status.status.error_message = ""
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore, reloader: ConfigReloader) -> None:
        self.core = core
        self.reloader = reloader

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            return model_status(self.core, request)
        except ServingError as error:
            _abort(context, error)

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> Any:
        """ModelServiceImpl::HandleReloadConfigRequest: only a model_config_list; blocks until the
        new models are available; ``metric_names`` get their increase over the reload."""
        before = {name: self.core.metrics.first_value(name) for name in request.metric_names}
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                    "ModelConfigList is currently supported"
                )
            for index, entry in enumerate(request.config.model_config_list.config):
                log.info(
                    "\nConfig entry\n\tindex : %d\n\tpath : %s\n\tname : %s\n\tplatform : %s",
                    index,
                    entry.base_path,
                    entry.name,
                    entry.model_platform,
                )
            self.reloader.reload(request.config)
        except ServingError as error:
            log.error("ReloadConfig failed: %s", error.message)
            _abort(context, error)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        for name, old in before.items():
            metric = response.metric.add()
            metric.name = name
            metric.int64_value_increase = self.core.metrics.first_value(name) - old
        return response


@dataclass(frozen=True)
class GrpcOptions:
    """Where and how gRPC listens: ``port`` None = no TCP port (UNIX socket only), 0 = a free port."""

    port: int | None = 8500
    host: str = "127.0.0.1"
    socket_path: str = ""
    max_threads: int = 4
    channel_arguments: str = ""
    enable_profiler: bool = True


def channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """--grpc_channel_arguments "k=v,k2=v2" as upstream passes them: an int32 value as an int, else
    the string; an entry without '=' is skipped (upstream would read past its end)."""
    parsed: list[tuple[str, int | str]] = []
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            log.warning("--grpc_channel_arguments entry %r has no '=value'; skipped", item)
            continue
        value = value.split("=", 1)[0]
        try:
            number = int(value.strip())
        except ValueError:
            parsed.append((key, value))
            continue
        parsed.append((key, number) if -(2**31) <= number < 2**31 else (key, value))
    return parsed


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_grpc(
    core: ServingCore, inference: Inference, reloader: ConfigReloader, options: GrpcOptions
) -> tuple[grpc.Server, int | None]:
    """A threaded gRPC server on host:port (0 = a free port) and/or a UNIX socket; returns it and
    the bound TCP port (None without one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=options.max_threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
            *channel_arguments(options.channel_arguments),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(core, inference), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core, reloader), server)
    if options.enable_profiler:
        from pytest_tfserving.embedded.profiler_service import profiler_handler

        server.add_generic_rpc_handlers((profiler_handler(),))
        log.info("Profiler service is enabled")
    bound: int | None = None
    if options.port is not None:
        address = _address(options.host, options.port)
        bound = server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"could not bind gRPC port {address} (in use?)")
    if options.socket_path:
        try:
            ok = server.add_insecure_port(f"unix:{options.socket_path}")
        except RuntimeError as exc:
            raise OSError(f"could not bind gRPC UNIX socket {options.socket_path}: {exc}") from None
        if ok == 0:
            raise OSError(f"could not bind gRPC UNIX socket {options.socket_path}")
    server.start()
    return server, bound
