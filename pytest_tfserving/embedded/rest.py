"""TF Serving's HTTP/REST API (and the Prometheus page) on aiohttp.

Request parsing, inference and JSON writing run on a pool of ``--rest_api_num_threads`` threads, so
that flag bounds inference concurrency as upstream's HTTP executor does; the event loop only moves
bytes. Errors are ``{"error": "..."}`` with the HTTP status TF Serving maps the gRPC code to.
Metrics as http_server.cc records them: every request under its model's request_count, OK ones in
request_latency with API = the URL's method in lower case ("predict", "classify", "regress") and
API "" for the status and metadata GETs, entrypoint "REST".
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    regression_pb2,
)

from pytest_tfserving.embedded.core import ServingCore
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.examples import (
    classification_json,
    input_from_json,
    parse_body,
    regression_json,
    signature_from_json,
)
from pytest_tfserving.embedded.grpc_service import SIGNATURE_DEF_FIELD, model_metadata, model_status
from pytest_tfserving.embedded.inference import Inference
from pytest_tfserving.embedded.rest_json import parse_request, response_body

PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<method>classify|regress|predict))?(?:/(?P<sub>metadata))?",
    re.IGNORECASE,
)
MAX_BODY = 512 * 1024 * 1024
CORS_HEADERS = {  # AddCORSHeaders, with --rest_api_enable_cors_support
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


def _json(message: Any) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class RestHandlers:
    def __init__(self, core: ServingCore, inference: Inference, threads: int, cors: bool = False) -> None:
        self.core = core
        self.inference = inference
        self.cors = cors
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="httprestserver")

    async def dispatch(self, request: web.Request) -> web.Response:
        match = PATH.fullmatch(request.path)
        if match is None:
            return web.Response(status=404, text="Not Found")
        body = await request.read()
        if request.method == "OPTIONS":  # CORS preflight, answered whether or not CORS is on
            status, payload = _preflight(request.headers.get("Origin", ""))
        else:
            status, payload = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.process, request.method, request.path, match, body
            )
        response = web.Response(status=status, body=payload, content_type="application/json")
        if self.cors:
            response.headers.update(CORS_HEADERS)
        return response

    def process(self, method: str, path: str, match: re.Match[str], body: bytes) -> tuple[int, bytes]:
        """One request, with upstream's metrics: request_count for every request, request_latency
        for OK ones under API = the method ("predict", "classify", "regress"; "" for GETs)."""
        start = time.perf_counter()
        api = (match["method"] or "").lower() if method == "POST" else ""
        name = match["name"] if method in ("POST", "GET") else ""
        try:
            version = self._version(match)
            if method == "POST" and api == "predict" and not match["sub"]:
                payload = json.dumps(self._predict(name, version, body), indent=1).encode()
            elif method == "POST" and api in ("classify", "regress") and not match["sub"]:
                payload = self._classify_or_regress(api, name, version, body)
            elif method == "GET" and not match["method"]:
                result = self._metadata(name, version) if match["sub"] else self._status(name, version)
                payload = json.dumps(result, indent=1).encode()
            else:
                raise invalid(f"Malformed request: {method} {path}")
        except ServingError as error:
            self.core.metrics.request(name, api, "REST", error.status_name, 0)
            return error.http_status, json.dumps({"error": error.message}).encode()
        except Exception as exc:  # never let one request take the server down
            self.core.metrics.request(name, api, "REST", "INTERNAL", 0)
            return 500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        self.core.metrics.request(name, api, "REST", "OK", (time.perf_counter() - start) * 1e6)
        return 200, payload

    @staticmethod
    def _version(match: re.Match[str]) -> int | None:
        if match["label"]:
            raise invalid(f"Unrecognized servable version label: {match['label']}")
        return int(match["version"]) if match["version"] else None

    def _predict(self, name: str, version: int | None, body: bytes) -> Any:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise invalid(f"JSON Parse error: {exc}") from None
        signature_name, inputs, rows = parse_request(
            parsed, lambda sig: self.core.signature(name, version, sig)
        )
        result = self.core.predict(name, version, signature_name, inputs)
        return response_body(result.outputs, rows)

    def _classify_or_regress(self, api: str, name: str, version: int | None, body: bytes) -> bytes:
        """ProcessClassifyRequest / ProcessRegressRequest: JSON examples -> tf.Examples -> results."""
        doc = parse_body(body)
        request: Any = (
            classification_pb2.ClassificationRequest()
            if api == "classify"
            else regression_pb2.RegressionRequest()
        )
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        request.model_spec.signature_name = signature_from_json(doc)
        request.input.CopyFrom(input_from_json(doc, api))
        if api == "classify":
            return classification_json(self.inference.classify(request).result)
        return regression_json(self.inference.regress(request).result)

    def _status(self, name: str, version: int | None) -> Any:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        return _json(model_status(self.core, request))

    def _metadata(self, name: str, version: int | None) -> Any:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        response = model_metadata(self.core, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(sig_map)
        spec = _json(response.model_spec)
        spec.setdefault("signature_name", "")
        return {"model_spec": spec, "metadata": {"signature_def": _json(sig_map)}}


def _preflight(origin: str) -> tuple[int, bytes]:
    if re.search(r"https?://", origin):
        return 200, b""
    return 400, json.dumps({"error": "Origin header is missing in CORS preflight"}).encode()


def build_app(
    core: ServingCore, inference: Inference, threads: int, prometheus_path: str | None, cors: bool = False
) -> web.Application:
    """The aiohttp application: Prometheus page (when enabled) and /v1/models/... routes."""
    handlers = RestHandlers(core, inference, threads, cors)
    app = web.Application(client_max_size=MAX_BODY)

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(text=core.metrics.render(), content_type="text/plain")

    if prometheus_path:
        app.router.add_get(prometheus_path, prometheus)
    app.router.add_route("*", "/{tail:.*}", handlers.dispatch)

    async def close_pool(app: web.Application) -> None:
        handlers.pool.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(close_pool)
    return app
