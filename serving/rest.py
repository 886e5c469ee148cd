"""TF Serving's REST API (/v1/models/...) over the same calls as gRPC: status, metadata,
predict in the row ("instances" -> "predictions") and columnar ("inputs" -> "outputs")
formats, and classify. Errors come back as {"error": message} with 400 (INVALID_ARGUMENT)
or 404 (NOT_FOUND), as TF Serving sends them."""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     predict_pb2)

from serving import api
from serving.model_store import ModelStore

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?:/(?P<meta>metadata))?"
                   r"(?::(?P<verb>predict|classify))?$")
_HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 413, "UNIMPLEMENTED": 501}


def _decode(value: Any) -> Any:
    """{"b64": "..."} -> bytes, recursively (TF Serving's JSON encoding of binary strings)."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _to_array(value: Any, spec: tf.TensorSpec, name: str) -> np.ndarray:
    value = _decode(value)
    if spec.dtype == tf.string:
        return np.array(value, dtype=object)
    try:
        array = np.asarray(value)
    except ValueError:
        raise api.ApiError("INVALID_ARGUMENT", f"input {name}: ragged lists cannot form a tensor") from None
    dtype = spec.dtype.as_numpy_dtype
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise api.ApiError("INVALID_ARGUMENT", f"input {name}: expected numbers for {spec.dtype.name}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise api.ApiError("INVALID_ARGUMENT", f"input {name}: {spec.dtype.name} values must be integers")
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise api.ApiError("INVALID_ARGUMENT", f"input {name}: values outside the range of {spec.dtype.name}")
    return array.astype(dtype)


def _to_json(value: np.ndarray) -> Any:
    if value.dtype == object or value.dtype.kind == "S":
        return [_to_json(v) for v in value] if value.ndim else (
            value.item().decode("utf-8", "replace") if isinstance(value.item(), bytes) else value.item())
    return value.tolist()


def _request(message_class, name: str, version: Optional[int], signature_name: Optional[str] = None):
    """A TF Serving request proto addressed to the model (and version, signature) of the URL."""
    request = message_class()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if signature_name is not None:
        request.model_spec.signature_name = signature_name
    return request


def predict_json(store: ModelStore, name: str, version: Optional[int], body: Dict) -> Dict:
    request = _request(predict_pb2.PredictRequest, name, version, body.get("signature_name", ""))
    servable = api.find_servable(store, request.model_spec)
    signature_name, function = api.find_signature(servable, request.model_spec.signature_name)
    specs = function.structured_input_signature[1]
    if ("instances" in body) == ("inputs" in body):
        raise api.ApiError("INVALID_ARGUMENT", 'the request needs exactly one of "instances" (row format) or '
                                               '"inputs" (columnar format)')
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise api.ApiError("INVALID_ARGUMENT", '"instances" must be a non-empty list')
        if all(isinstance(i, dict) and set(i) != {"b64"} for i in instances):  # objects keyed by input
            columns = {k: [i.get(k) for i in instances] for k in set().union(*instances)}
        elif len(specs) == 1:  # a single-input signature takes the bare values
            columns = {next(iter(specs)): instances}
        else:
            raise api.ApiError("INVALID_ARGUMENT", "this signature has several inputs: each instance must be "
                                                   "an object keyed by input name")
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            columns = inputs
        elif len(specs) == 1:
            columns = {next(iter(specs)): inputs}
        else:
            raise api.ApiError("INVALID_ARGUMENT", '"inputs" must be an object keyed by input name')
    arrays = {}
    for key, value in columns.items():
        if key not in specs:
            raise api.ApiError("INVALID_ARGUMENT", f"input tensor alias not found in signature: {key}")
        arrays[key] = _to_array(value, specs[key], key)
    outputs = api.run(function, api.validate_inputs(function, arrays), store.batcher, (servable.version, signature_name))
    if "instances" in body:
        if len(outputs) == 1:
            return {"predictions": _to_json(next(iter(outputs.values())))}
        rows = len(next(iter(outputs.values())))
        return {"predictions": [{k: _to_json(v[i]) for k, v in outputs.items()} for i in range(rows)]}
    if len(outputs) == 1:
        return {"outputs": _to_json(next(iter(outputs.values())))}
    return {"outputs": {k: _to_json(v) for k, v in outputs.items()}}


def classify_json(store: ModelStore, name: str, version: Optional[int], body: Dict) -> Dict:
    request = _request(classification_pb2.ClassificationRequest, name, version, body.get("signature_name", ""))
    for example in body.get("examples", []):
        proto = request.input.example_list.examples.add()
        for key, value in example.items():
            values = value if isinstance(value, list) else [value]
            if all(isinstance(v, int) for v in values):
                proto.features.feature[key].int64_list.value.extend(values)
            elif all(isinstance(v, (int, float)) for v in values):
                proto.features.feature[key].float_list.value.extend(values)
            else:
                proto.features.feature[key].bytes_list.value.extend(
                    _decode(v) if isinstance(v, dict) else str(v).encode() for v in values)
    response = api.classify(store, request)
    return {"results": [[[c.label, c.score] for c in r.classes] for r in response.result.classifications]}


def status_json(store: ModelStore, name: str, version: Optional[int]) -> Dict:
    response = api.status(store, _request(get_model_status_pb2.GetModelStatusRequest, name, version))
    return {"model_version_status": [
        {"version": str(s.version), "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
         "status": {"error_code": "OK", "error_message": ""}} for s in response.model_version_status]}


def metadata_json(store: ModelStore, name: str, version: Optional[int]) -> Dict:
    request = _request(get_model_metadata_pb2.GetModelMetadataRequest, name, version)
    request.metadata_field.append("signature_def")
    response = api.metadata(store, request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": {"name": name, "signature_name": "", "version": str(response.model_spec.version.value)},
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)}}


def make_handler(store: ModelStore, max_body_bytes: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: Dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> Tuple[int, Dict]:
            match = _PATH.match(self.path.split("?")[0])
            if not match:
                return 404, {"error": f"Malformed request: {method} {self.path}"}
            name, verb, meta = match["name"], match["verb"], match["meta"]
            version = int(match["version"]) if match["version"] else None
            if method == "GET" and not verb:
                return 200, (metadata_json if meta else status_json)(store, name, version)
            if method == "POST" and verb and not meta:
                length = int(self.headers.get("Content-Length") or 0)
                if length > max_body_bytes:
                    raise api.ApiError("RESOURCE_EXHAUSTED", f"request body of {length} bytes exceeds the limit "
                                                             f"of {max_body_bytes}")
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError as e:
                    raise api.ApiError("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
                if not isinstance(body, dict):
                    raise api.ApiError("INVALID_ARGUMENT", "the request body must be a JSON object")
                return 200, (predict_json if verb == "predict" else classify_json)(store, name, version, body)
            return 404, {"error": f"Malformed request: {method} {self.path}"}

        def _serve(self, method: str) -> None:
            try:
                status, payload = self._route(method)
            except api.ApiError as e:
                status, payload = _HTTP_STATUS.get(e.code, 500), {"error": str(e)}
            self._reply(status, payload)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def log_message(self, *args):
            pass

    return Handler


def start(store: ModelStore, host: str, port: int, max_body_bytes: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(store, max_body_bytes))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server
