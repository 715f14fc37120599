"""TF Serving's HTTP/REST API (and the Prometheus page) on aiohttp.

Request parsing, inference and JSON writing run on a pool of ``--rest_api_num_threads`` threads, so
that flag bounds inference concurrency as upstream's HTTP executor does; the event loop only moves
bytes. Errors are ``{"error": "..."}`` with the HTTP status TF Serving maps the gRPC code to.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from pytest_tfserving.embedded.core import ServingCore
from pytest_tfserving.embedded.errors import ServingError, invalid
from pytest_tfserving.embedded.grpc_service import SIGNATURE_DEF_FIELD, model_metadata, model_status
from pytest_tfserving.embedded.rest_json import parse_request, response_body

PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<method>classify|regress|predict))?(?:/(?P<sub>metadata))?",
    re.IGNORECASE,
)
MAX_BODY = 512 * 1024 * 1024


def _json(message: Any) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class RestHandlers:
    def __init__(self, core: ServingCore, threads: int) -> None:
        self.core = core
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="httprestserver")

    async def dispatch(self, request: web.Request) -> web.Response:
        match = PATH.fullmatch(request.path)
        if match is None:
            return web.Response(status=404, text="Not Found")
        body = await request.read()
        status, payload = await asyncio.get_running_loop().run_in_executor(
            self.pool, self.process, request.method, request.path, match, body
        )
        return web.Response(status=status, body=payload, content_type="application/json")

    def process(self, method: str, path: str, match: re.Match[str], body: bytes) -> tuple[int, bytes]:
        start = time.perf_counter()
        name = match["name"]
        action = (match["method"] or "").lower()
        try:
            if match["label"]:
                raise invalid(f"Unrecognized servable version label: {match['label']}")
            version = int(match["version"]) if match["version"] else None
            if method == "POST" and action == "predict":
                result = self._predict(name, version, body)
            elif method == "POST" and action in ("classify", "regress"):
                raise ServingError(_unimplemented(), f"{action} is not supported by the embedded server")
            elif method == "GET" and not action:
                result = self._metadata(name, version) if match["sub"] else self._status(name, version)
            else:
                raise invalid(f"Malformed request: {method} {path}")
            payload = json.dumps(result, indent=1).encode()
        except ServingError as error:
            if action == "predict":
                self.core.metrics.request(name, "predict", "REST", error.status_name, 0)
            return error.http_status, json.dumps({"error": error.message}).encode()
        except Exception as exc:  # never let one request take the server down
            return 500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        if action == "predict":
            self.core.metrics.request(name, "predict", "REST", "OK", (time.perf_counter() - start) * 1e6)
        return 200, payload

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


def _unimplemented() -> grpc.StatusCode:
    return grpc.StatusCode.UNIMPLEMENTED


def build_app(core: ServingCore, threads: int, prometheus_path: str | None) -> web.Application:
    """The aiohttp application: Prometheus page (when enabled) and /v1/models/... routes."""
    handlers = RestHandlers(core, threads)
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
