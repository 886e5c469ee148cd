"""TF Serving's REST API (/v1/models/...) over the service gRPC calls too (api.Service), routed
and answered as TF Serving's http_rest_api_handler.cc and http_server.cc do it: its path
patterns, matched case-insensitively (versions and labels), "Malformed request" for anything
else under /v1/, its gRPC-code → HTTP-status table, and {"error": message} bodies. The JSON
codec is json_tensor.py; the transport (limits, timeouts, the worker pool) is http_server.py.
Prometheus metrics at the monitoring config's path."""

import json
import re
import time
from typing import Optional, Tuple
from urllib.parse import unquote

from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     regression_pb2)

from serving import api, json_tensor
from serving.contract import ApiError
from serving.http_server import HttpLimits, HttpServer, Request, Response, json_error
from serving.metrics import Metrics

# http_rest_api_util.h / .cc, with RE2's (?i) as re.IGNORECASE.
_HANDLED = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_PREDICTION = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
                         re.IGNORECASE)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
                     re.IGNORECASE)
_INT64_MAX = 2**63 - 1

# http_server.cc's ToHTTPStatusCode.
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
# The transport's own answers, as the gRPC codes the metrics count them under.
TRANSPORT_STATUS = {400: "INVALID_ARGUMENT", 408: "DEADLINE_EXCEEDED", 411: "INVALID_ARGUMENT",
                    413: "RESOURCE_EXHAUSTED", 431: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class _Route:
    """What ParseModelInfo reads from a path: model, version or label, verb, subresource."""

    def __init__(self, method: str, path: str):
        self.name, self.version, self.label, self.verb, self.subresource = "", None, None, "", ""
        match = (_PREDICTION.fullmatch(path) if method == "POST" else
                 _STATUS.fullmatch(path) if method == "GET" else None)
        self.matched = match is not None
        if not match:
            return
        name, version, label, last = match.groups()
        self.name = unquote(name) if name else ""
        if version:
            number = int(version)
            if number > _INT64_MAX:
                raise ApiError("INVALID_ARGUMENT", f"Failed to convert version: {version} to numeric.")
            self.version = number
        if label:
            self.label = unquote(label)
        if method == "POST":
            self.verb = last  # compared as written: TF Serving matches ":PREDICT" and then finds no such verb
        else:
            self.subresource = last or ""

    def model_spec(self, message) -> None:
        message.model_spec.name = self.name
        if self.version is not None:
            message.model_spec.version.value = self.version
        if self.label is not None:
            message.model_spec.version_label = self.label


def _api_label(method: str, route: _Route) -> str:
    """The metrics' API label, from a closed set (metrics.REST_APIS, or "" for a request that
    names none): the handler that answers, not the path as typed (":PREDICT" is a malformed
    request, ".../METADATA" a status one, as TF Serving dispatches them)."""
    if not route.matched:
        return ""
    if method == "POST":
        return route.verb if route.verb in ("predict", "classify", "regress") else ""
    return "metadata" if route.subresource == "metadata" else "status"


class RestApi:
    """The request handler: Request -> Response, on an http_server worker thread."""

    def __init__(self, service: api.Service, metrics: Optional[Metrics] = None, prometheus_path: Optional[str] = None):
        self.service, self.metrics, self.prometheus_path = service, metrics, prometheus_path

    def __call__(self, request: Request) -> Response:
        path = request.target.split("?", 1)[0].split("#", 1)[0]
        if self.prometheus_path and self.metrics is not None and path == self.prometheus_path:
            return Response(200, self.metrics.page(), self.metrics.content_type)
        if not _HANDLED.fullmatch(path):
            return json_error(404, f"Not found: {request.method} {path} (this server answers /v1/models/..., "
                                   "TF Serving's REST API)")
        if request.method == "OPTIONS":  # a CORS preflight, answered as TF Serving does
            origin = dict(request.headers).get("origin", "")
            if re.search(r"https?://", origin):
                return Response(200, b"")
            return json_error(400, "Origin header is missing in CORS preflight")
        start = time.perf_counter()
        verb, code, body = self._process(request.method, path, request.body)
        if self.metrics is not None:
            self.metrics.record(verb, "REST", code, time.perf_counter() - start)
        return Response(HTTP_STATUS.get(code, 500), body.encode())

    def transport_error(self, status: int) -> None:
        if self.metrics is not None:
            self.metrics.record("", "REST", TRANSPORT_STATUS.get(status, "UNKNOWN"), 0.0)

    def _process(self, method: str, path: str, body: bytes) -> Tuple[str, str, str]:
        """(verb for the metrics, gRPC code name, JSON text): http_rest_api_handler.cc's
        ProcessRequest."""
        verb = ""
        try:
            route = _Route(method, path)
            verb = _api_label(method, route)
            if method == "POST" and route.matched and route.verb in ("predict", "classify", "regress"):
                handler = {"predict": self._predict, "classify": self._classify, "regress": self._regress}[route.verb]
                return verb, "OK", handler(route, body)
            if method == "GET" and route.matched:
                if not route.name:
                    raise ApiError("INVALID_ARGUMENT", "Missing model name in request.")
                if route.subresource == "metadata":
                    return verb, "OK", self._metadata(route)
                return verb, "OK", self._status(route)
            raise ApiError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
        except ApiError as e:
            return verb, e.code, json_tensor.error_response(str(e))

    def _predict(self, route: _Route, body: bytes) -> str:
        """json_tensor.cc's FillPredictRequestFromJson against the signature the service finds,
        then the service's run: the JSON decodes straight into arrays."""
        doc = json_tensor.parse(body)
        target = self.service.predict_target(route.name, route.version, route.label, json_tensor.signature_name(doc),
                                             rest=True)
        arrays, form = json_tensor.predict_inputs(doc, target.inputs, self.service.limits)
        return json_tensor.predict_response(self.service.predict_arrays(target, arrays), form)

    def _examples_request(self, message_class, route: _Route, body: bytes):
        """The Classification- or RegressionRequest gRPC would carry, from the JSON."""
        doc = json_tensor.parse(body)
        request = message_class()
        route.model_spec(request)
        request.model_spec.signature_name = json_tensor.signature_name(doc)
        json_tensor.fill_examples(doc, request)
        return request

    def _classify(self, route: _Route, body: bytes) -> str:
        response = self.service.classify(self._examples_request(classification_pb2.ClassificationRequest, route, body))
        return json_tensor.classification_response(response.result.classifications)

    def _regress(self, route: _Route, body: bytes) -> str:
        response = self.service.regress(self._examples_request(regression_pb2.RegressionRequest, route, body))
        return json_tensor.regression_response(response.result.regressions)

    def _status(self, route: _Route) -> str:
        request = get_model_status_pb2.GetModelStatusRequest()
        route.model_spec(request)
        response = self.service.status(request)
        return json.dumps(json_format.MessageToDict(response, including_default_value_fields=True), indent=1)

    def _metadata(self, route: _Route) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        route.model_spec(request)
        request.metadata_field.append(api.SIGNATURE_DEF_FIELD)
        response = self.service.metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[api.SIGNATURE_DEF_FIELD].Unpack(signature_map)

        def as_dict(message):
            return json_format.MessageToDict(message, including_default_value_fields=True,
                                             preserving_proto_field_name=True)
        return json.dumps({"model_spec": as_dict(response.model_spec),
                           "metadata": {"signature_def": as_dict(signature_map)}}, indent=1)


def start(service: api.Service, host: str, port: int, http_limits: HttpLimits, metrics: Optional[Metrics] = None,
          prometheus_path: Optional[str] = None) -> HttpServer:
    handler = RestApi(service, metrics, prometheus_path)
    return HttpServer(handler, host, port, http_limits, on_transport_error=handler.transport_error)
