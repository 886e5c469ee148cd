"""The local server against TF Serving's own behaviour, one expectation a row: what TF
Serving answers (path, status code, message) as its REST handler, its handler tests and its
servables' source state it (tensorflow_serving/model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc, http_server.cc, util/json_tensor.cc, servables/tensorflow/
predict_util.cc, classifier.cc, regressor.cc, util.cc, get_model_status_impl.cc,
get_model_metadata_impl.cc, core/basic_manager.cc, model_servers/server_core.cc).
The model is served from a ModelServerConfig with a version label, as serving/models.config
is written."""

import json
import re

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
                                     regression_pb2)

from core import features
from serving import server as local_server
from tests.serving.http_helpers import call, call_json

IMAGE = np.full((1,) + features.IMAGE_SHAPE, 128, np.uint8).tolist()


@pytest.fixture(scope="module")
def served(model_base, tmp_path_factory):
    config = tmp_path_factory.mktemp("conformance") / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "fer" base_path: "{model_base}" '
                      'model_platform: "tensorflow" version_labels { key: "stable" value: 1 } } }\n')
    server = local_server.start(model_config_file=str(config), grpc_port=0, rest_port=0, poll_seconds=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, prediction_service_pb2_grpc.PredictionServiceStub(channel), \
        model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()
    server.stop()


# -- REST: (method, path, body, TF Serving's status, a part of its message) -----------------------
REST = [
    # paths (kPredictionApiGegex / kModelStatusApiRegex, case-insensitive) and ParseModelInfo
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
    ("POST", "/v1/foo", b"{}", 400, "Malformed request: POST /v1/foo"),
    ("GET", "/v1/models/debug/model_name", None, 400, "Malformed request"),
    ("POST", "/v1/models", b"{}", 400, "Malformed request: POST /v1/models"),
    ("GET", "/v1/models/fer:predict", None, 400, "Malformed request"),
    ("GET", "/v1/models/fer/version/50:predict", None, 400, "Malformed request"),
    ("POST", "/v1/models/fer/versions/HELLO:regress", b"{}", 400, "Malformed request"),
    ("POST", "/v1/models/fer/versions/99999999999999999999:predict", b"{}", 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("POST", "/v1/models/fer/metadata", b"{}", 400, "Malformed request"),
    ("POST", "/v1/models/fer/label/some_label:regress", b"{}", 400, "Malformed request"),
    ("POST", "/v1/models/fer/versions/50/labels/some_label:regress", b"{}", 400, "Malformed request"),
    ("POST", "/v1/models/fer:PREDICT", b"{}", 400, "Malformed request"),  # matched, then no such verb
    ("PUT", "/v1/models/fer", b"{}", 400, "Malformed request: PUT /v1/models/fer"),
    ("DELETE", "/v1/models/fer", None, 400, "Malformed request: DELETE /v1/models/fer"),
    ("OPTIONS", "/v1/models/fer", None, 400, "Origin header is missing in CORS preflight"),
    # model, version and label lookups
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/fer/versions/7", None, 404, "Could not find version 7 of model fer"),
    ("POST", "/v1/models/nope:predict", {"instances": IMAGE}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/fer/versions/7:predict", {"instances": IMAGE}, 404,
     "Servable not found for request: Specific(fer, 7)"),
    ("POST", "/v1/models/fer/labels/canary:predict", {"instances": IMAGE}, 400,
     "Unrecognized servable version label: canary"),
    ("GET", "/v1/models/fer/labels/canary/metadata", None, 400, "Unrecognized servable version label: canary"),
    # the body (json_tensor.cc)
    ("POST", "/v1/models/fer:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("POST", "/v1/models/fer:predict", b"instances = [1, 2]", 400, "JSON Parse error: Invalid value"),
    ("POST", "/v1/models/fer:predict", b"[1]", 400, "Is not object"),
    ("POST", "/v1/models/fer:predict", {"signature_name": 100}, 400,
     "'signature_name' key must be a string value."),
    ("POST", "/v1/models/fer:predict", {"signature_name": "nope", "instances": IMAGE}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", "/v1/models/fer:predict", {"instances": ["x", "y"]}, 400,
     'JSON Value: "x" Type: String is not of expected type: uint8'),
    ("POST", "/v1/models/fer:predict", {"instances": IMAGE, "inputs": IMAGE}, 400,
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("POST", "/v1/models/fer:predict", {"instances": 5}, 400, "Expecting 'instances' to be an list/array"),
    ("POST", "/v1/models/fer:predict", {"instances": []}, 400, "No values in 'instances' array"),
    ("POST", "/v1/models/fer:predict", {"other": 1}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", "/v1/models/fer:predict", {"inputs": {"pixels": IMAGE}}, 400,
     "Missing named input: image in 'inputs' object."),
    ("POST", "/v1/models/fer:predict", {"instances": [{"pixels": IMAGE[0]}]}, 400,
     "Failed to process element: 0 key: pixels of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
     "have named input: pixels"),
    ("POST", "/v1/models/fer:predict", {"instances": [IMAGE[0], {"image": IMAGE[0]}]}, 400,
     "Expecting value/list but got object at item 1 of input list"),
    ("POST", "/v1/models/fer:predict", {"instances": [IMAGE[0], IMAGE[0][:47]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2304 but "
     "got: 2256"),
    ("POST", "/v1/models/fer:predict", {"instances": [[[1.5]]]}, 400,
     "JSON Value: 1.5 Type: Number is not of expected type: uint8"),
    ("POST", "/v1/models/fer:predict", {"instances": [[[1], [2, 3]]]}, 400,
     "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    # classify / regress (classifier.cc, regressor.cc, json_tensor.cc)
    ("POST", "/v1/models/fer:classify", {"examples": ["x"]}, 400, "Example must be JSON object but got JSON String"),
    ("POST", "/v1/models/fer:classify", {"other": []}, 400,
     "When method is classify, key 'examples' is expected and was not found"),
    ("POST", "/v1/models/fer:classify", {"examples": 3}, 400, "Expecting 'examples' value to be an list/array"),
    ("POST", "/v1/models/fer:classify", {"examples": []}, 400, "'examples' value is an empty array"),
    ("POST", "/v1/models/fer:classify", {"examples": [{"pixels": [1, "a"]}]}, 400,
     "Unexpected element type in feature: pixels expecting type: int64"),
    ("POST", "/v1/models/fer:classify", {"examples": [{"pixels": None}]}, 400,
     "Feature: pixels has element with unexpected JSON type: Null"),
    # a signature's method_name is not checked (--enable_signature_method_name_check defaults to false,
    # server.h, util.cc): its inputs and outputs are (PreProcessClassification, PreProcessRegression)
    ("POST", "/v1/models/fer:classify", {"examples": [{"pixels": [1]}]}, 400,
     "No classification inputs found in SignatureDef"),
    ("POST", "/v1/models/fer:classify", {"signature_name": "nope", "examples": [{}]}, 400,
     "No signature was found with the name: nope"),
    ("POST", "/v1/models/fer:regress", {"examples": [{"pixels": [1]}]}, 400,
     "No regression inputs found in SignatureDef"),
    ("POST", "/v1/models/fer:regress", {"signature_name": "classify", "examples": [{"pixels": [1]}]}, 400,
     "Expected one output Tensor."),
]


@pytest.mark.parametrize("method, path, body, status, message", REST, ids=[f"{r[0]} {r[1]} {i}" for i, r in
                                                                           enumerate(REST)])
def test_rest_errors_as_tf_serving(served, method, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got_status, got = call_json(served[0].rest_port, method, path, body=None if raw is not None else body, raw=raw)
    assert (got_status, set(got)) == (status, {"error"}), got
    assert message in got["error"]


def test_paths_are_matched_case_insensitively_and_labels_resolve(served):
    port = served[0].rest_port
    status, body = call_json(port, "GET", "/V1/Models/fer")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = call_json(port, "POST", "/V1/MODELS/fer/LABELS/stable:predict", {"instances": IMAGE})
    assert status == 200 and len(body["predictions"]) == 1
    status, body = call_json(port, "POST", "/v1/models/fer/Versions/1:predict", {"instances": IMAGE})
    assert status == 200
    # TF Serving compares the sub-resource as written: .../METADATA is a status request
    status, body = call_json(port, "GET", "/v1/models/fer/METADATA")
    assert status == 200 and "model_version_status" in body
    status, body = call_json(port, "GET", "/v1/models/fer/labels/stable")  # status ignores the label
    assert status == 200 and [s["version"] for s in body["model_version_status"]] == ["1"]


def test_status_json_is_tf_serving_s(served):
    status, body = call_json(served[0].rest_port, "GET", "/v1/models/fer/versions/1")
    assert (status, body) == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})


def test_metadata_has_every_signature_with_default_fields(served):
    status, body = call_json(served[0].rest_port, "GET", "/v1/models/fer/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "fer", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "classify", "__saved_model_init_op"} <= set(signatures)
    image = signatures["serving_default"]["inputs"]["image"]
    assert image["dtype"] == "DT_UINT8" and image["tensor_shape"]["unknown_rank"] is False
    assert [d["size"] for d in image["tensor_shape"]["dim"]] == ["-1", "48", "48", "1"]
    assert all(d["name"] == "" for d in image["tensor_shape"]["dim"])
    for signature in signatures.values():
        assert {"inputs", "outputs", "method_name", "defaults"} <= set(signature)


def _numbers(text: str):
    return re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+|NaN|-?Infinity", text)


def test_predict_writes_float32_as_tf_serving_does(served):
    server, prediction, _ = served
    batch = np.random.default_rng(0).integers(0, 256, (3,) + features.IMAGE_SHAPE).astype(np.uint8)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
    expected = tf.make_ndarray(prediction.Predict(request, timeout=10).outputs["probabilities"])
    status, headers, body = call(server.rest_port, "POST", "/v1/models/fer:predict",
                                 json.dumps({"instances": batch.tolist()}).encode())
    assert status == 200 and headers["content-type"] == "application/json"
    tokens = _numbers(body.decode())
    assert len(tokens) == expected.size
    for token, value in zip(tokens, expected.reshape(-1)):
        assert np.float32(token) == value  # the text reads back as the very float32
        shortest = "%g" % value
        assert token == (shortest if np.float32(shortest) == value else "%.9g" % value)
    status, columns = call_json(server.rest_port, "POST", "/v1/models/fer:predict",
                                {"inputs": {"image": batch.tolist()}})
    assert status == 200 and np.array_equal(np.float32(columns["outputs"]), expected)


def test_classify_merges_the_context_into_each_example(served):
    port = served[0].rest_port
    pixels = [200] * features.NUM_PIXELS
    status, alone = call_json(port, "POST", "/v1/models/fer:classify",
                              {"signature_name": "classify", "examples": [{"pixels": pixels}]})
    assert status == 200
    status, merged = call_json(port, "POST", "/v1/models/fer:classify",
                               {"signature_name": "classify", "context": {"pixels": pixels}, "examples": [{}, {}]})
    assert status == 200 and len(merged["results"]) == 2
    assert merged["results"][0] == merged["results"][1] == alone["results"][0]
    assert [label for label, _ in alone["results"][0]] == list(features.CLASS_NAMES)


def test_cors_preflight_with_an_origin(served):
    status, _, body = call(served[0].rest_port, "OPTIONS", "/v1/models/fer:predict",
                           headers={"Origin": "http://localhost:3000"})
    assert status == 200 and body == b""


def test_outside_v1_is_not_found_with_a_json_error(served):
    status, body = call_json(served[0].rest_port, "GET", "/healthz")
    assert status == 404 and "Not found: GET /healthz" in body["error"]


# -- gRPC ------------------------------------------------------------------------------------------
def _predict(name="image", value=None, signature="", model="fer", label="", output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if label:
        request.model_spec.version_label = label
    request.inputs[name].CopyFrom(tf.make_tensor_proto(np.zeros((1,) + features.IMAGE_SHAPE, np.uint8)
                                                       if value is None else value))
    request.output_filter.extend(output_filter)
    return request


def _with_extra_input():
    request = _predict()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros(1, np.float32)))
    return request


def _classify(signature="", examples=1):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "fer"
    request.model_spec.signature_name = signature
    for _ in range(examples):
        request.input.example_list.examples.add().features.feature["pixels"].int64_list.value.extend(
            [128] * features.NUM_PIXELS)
    return request


def _regress():
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "fer"
    request.input.example_list.examples.add()
    return request


def _metadata(*fields):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "fer"
    request.metadata_field.extend(fields)
    return request


def _status(model="fer"):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    return request


GRPC = [
    ("Predict", lambda: _predict(signature="nope"), "FAILED_PRECONDITION", 'Serving signature key "nope" not found.'),
    ("Predict", lambda: _predict(name="pixels"), "INVALID_ARGUMENT",
     "input tensor alias not found in signature: pixels. Inputs expected to be in the set {image}."),
    ("Predict", _with_extra_input, "INVALID_ARGUMENT",
     "input size does not match signature: 2!=1 len({image,x}) != len({image}). Sent extra: {x}. "
     "Missing but required: {}."),
    ("Predict", lambda: _predict(value=np.zeros((1,) + features.IMAGE_SHAPE, np.float32)), "INVALID_ARGUMENT",
     "Expects arg[0] to be uint8 but float is provided"),
    ("Predict", lambda: _predict(model="nope"), "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    ("Predict", lambda: _predict(label="canary"), "INVALID_ARGUMENT", "Unrecognized servable version label: canary"),
    ("Predict", lambda: _predict(output_filter=["nope"]), "INVALID_ARGUMENT",
     "output tensor alias not found in signature: nope Outputs expected to be in the set {probabilities}."),
    ("Classify", lambda: _classify(), "INVALID_ARGUMENT", "No classification inputs found in SignatureDef"),
    ("Classify", lambda: _classify(signature="nope"), "INVALID_ARGUMENT", "No signature was found with the name: nope"),
    ("Classify", lambda: _classify(signature="classify", examples=0), "INVALID_ARGUMENT", "Input is empty."),
    ("Regress", _regress, "INVALID_ARGUMENT", "No regression inputs found in SignatureDef"),
    ("GetModelMetadata", lambda: _metadata(), "INVALID_ARGUMENT",
     "GetModelMetadataRequest must specify at least one metadata_field"),
    ("GetModelMetadata", lambda: _metadata("signature_def", "other"), "INVALID_ARGUMENT",
     "Metadata field other is not supported"),
    ("GetModelStatus", lambda: _status("nope"), "NOT_FOUND", "Could not find any versions of model nope"),
]


@pytest.mark.parametrize("rpc, make, code, message", GRPC, ids=[f"{r[0]} {i}" for i, r in enumerate(GRPC)])
def test_grpc_errors_as_tf_serving(served, rpc, make, code, message):
    _, prediction, model_service = served
    stub = model_service if rpc == "GetModelStatus" else prediction
    with pytest.raises(grpc.RpcError) as raised:
        getattr(stub, rpc)(make(), timeout=10)
    assert raised.value.code() == grpc.StatusCode[code]
    assert message in raised.value.details()


def test_grpc_predict_by_label_and_classify_signature(served):
    _, prediction, _ = served
    response = prediction.Predict(_predict(label="stable"), timeout=10)
    assert response.model_spec.version.value == 1 and response.model_spec.signature_name == "serving_default"
    classified = prediction.Classify(_classify(signature="classify"), timeout=10)
    assert [c.label for c in classified.result.classifications[0].classes] == list(features.CLASS_NAMES)


def test_metrics_are_not_served_without_a_monitoring_config(served):
    status, body = call_json(served[0].rest_port, "GET", "/monitoring/prometheus/metrics")
    assert status == 404


# -- --enable_signature_method_name_check=true: the method name is checked first ---------------------
METHOD_CHECKED = [
    ("classify", {"examples": [{"pixels": [1]}]},
     "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
     "tensorflow/serving/predict"),
    ("regress", {"examples": [{"pixels": [1]}]},
     "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict"),
    ("regress", {"signature_name": "classify", "examples": [{"pixels": [1]}]},
     "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify"),
]


@pytest.fixture(scope="module")
def method_checked(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0,
                                enable_signature_method_name_check=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()
    server.stop()


@pytest.mark.parametrize("verb, body, message", METHOD_CHECKED)
def test_the_method_name_check_when_enabled(method_checked, verb, body, message):
    status, got = call_json(method_checked[0].rest_port, "POST", f"/v1/models/fer:{verb}", body)
    assert status == 400 and got["error"].startswith(message)  # TF Serving's text, then perhaps a hint


def test_the_method_name_check_when_enabled_over_grpc(method_checked):
    prediction = method_checked[1]
    for rpc, request, message in [("Classify", _classify(), METHOD_CHECKED[0][2]), ("Regress", _regress(),
                                                                                     METHOD_CHECKED[1][2])]:
        with pytest.raises(grpc.RpcError) as raised:
            getattr(prediction, rpc)(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and raised.value.details().startswith(message)
    classified = prediction.Classify(_classify(signature="classify"), timeout=10)  # the classify signature passes
    assert len(classified.result.classifications) == 1


def test_the_method_name_check_flag_defaults_to_false_as_in_tf_serving():
    from cli.main import build_parser
    from serving import options

    def parsed(*flags):
        return options.from_args(build_parser().parse_args(["serve", *flags]), "/m")

    assert parsed().enable_signature_method_name_check is False
    assert parsed("--enable_signature_method_name_check=true").enable_signature_method_name_check is True
    assert parsed("--enable-signature-method-name-check").enable_signature_method_name_check is True


# -- additions to TF Serving's text (issue 23, item 10) ----------------------------------------------
def test_classify_without_a_signature_name_gets_tf_serving_s_message_and_a_hint(served):
    status, got = call_json(served[0].rest_port, "POST", "/v1/models/fer:classify", {"examples": [{"pixels": [1]}]})
    assert status == 400
    assert got["error"].startswith("No classification inputs found in SignatureDef: ")  # TF Serving's, whole
    assert got["error"].endswith(' (hint: serving_default is not a classify signature; this model\'s is "classify": '
                                 'set signature_name to it)')


def test_a_base64_payload_in_an_error_is_cut_to_a_prefix(served):
    import base64

    payload = base64.b64encode(bytes(range(256)) * 3).decode()  # 1024 characters
    for body in ({"inputs": {"b64": payload}}, {"instances": [{"b64": payload}]}, {"instances": {"b64": payload}}):
        status, got = call_json(served[0].rest_port, "POST", "/v1/models/fer:predict", body)
        assert status == 400
        assert '{"b64":"' + payload[:16] + '... (1024 chars)"}' in got["error"], got
        assert payload[:17] not in got["error"]


def test_status_and_metadata_are_pretty_printed_as_tf_serving_s(served):
    """http_rest_api_util.cc's ToJsonString: protobuf's JSON with add_whitespace (one space an
    indent level); predict answers stay compact (README says where this differs)."""
    status, _, body = call(served[0].rest_port, "GET", "/v1/models/fer/versions/1")
    assert status == 200 and body.decode() == (
        '{\n "model_version_status": [\n  {\n   "version": "1",\n   "state": "AVAILABLE",\n   "status": {\n'
        '    "error_code": "OK",\n    "error_message": ""\n   }\n  }\n ]\n}')
    status, _, body = call(served[0].rest_port, "GET", "/v1/models/fer/metadata")
    assert status == 200 and body.decode().startswith('{\n "model_spec": {\n  "name": "fer",\n')
