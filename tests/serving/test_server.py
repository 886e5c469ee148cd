"""The local server against plain TF Serving clients: the tensorflow-serving-api gRPC stubs
and TF Serving's REST API. Status, metadata, Predict, Classify, every error code, a version
pushed while it runs, and requests in flight during the switch."""

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)

from components.fer_example_gen.encoding import serialize_example
from core import features
from serving import server as local_server
from tests.serving.conftest import export_version


@pytest.fixture(scope="module")
def running(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0.2,
                                max_message_bytes=1024 * 1024)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, prediction_service_pb2_grpc.PredictionServiceStub(channel), \
        model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()
    server.stop()


def images(n, value=None, seed=0):
    if value is not None:
        return np.full((n,) + features.IMAGE_SHAPE, value, np.uint8)
    return np.random.default_rng(seed).integers(0, 256, (n,) + features.IMAGE_SHAPE).astype(np.uint8)


def predict_request(array, name="image", model="fer", version=None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def rest(server, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data,
                                     method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _non_loopback_address():
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return None


def test_binds_loopback_by_default(running):
    server, _, _ = running  # started without a host
    assert server.rest.server_address[0] == "127.0.0.1"
    other = _non_loopback_address()
    if not other or other.startswith("127."):
        pytest.skip("this machine has no non-loopback address to try")
    with grpc.insecure_channel(f"{other}:{server.grpc_port}") as channel:  # not served there
        with pytest.raises(grpc.RpcError) as raised:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_request(images(1)), timeout=3)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_status_and_metadata_over_grpc(running, model_base):
    _, prediction, model_service = running
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "fer"
    status = model_service.GetModelStatus(status_request, timeout=10)
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "fer"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.inputs["image"].dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in default.inputs["image"].tensor_shape.dim] == [-1, 48, 48, 1]
    assert signatures.signature_def["classify"].method_name == "tensorflow/serving/classify"


def test_predict_matches_the_saved_model_in_process(running, model_base):
    server, prediction, _ = running
    version = server.store.get("fer").version
    batch = images(3)
    response = prediction.Predict(predict_request(batch), timeout=10)
    got = tf.make_ndarray(response.outputs["probabilities"])
    assert got.shape == (3, 7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    local = tf.saved_model.load(str(model_base / str(version))).signatures["serving_default"]
    np.testing.assert_allclose(got, local(image=tf.constant(batch))["probabilities"].numpy(), rtol=1e-5)
    assert response.model_spec.version.value == version and response.model_spec.signature_name == "serving_default"


def test_classify_returns_named_classes(running):
    _, prediction, _ = running
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "fer"
    request.model_spec.signature_name = "classify"
    for value in (10, 240):
        request.input.example_list.examples.add().ParseFromString(
            serialize_example(0, np.full(features.NUM_PIXELS, value, np.int64)))
    result = prediction.Classify(request, timeout=10).result
    assert len(result.classifications) == 2
    assert [c.label for c in result.classifications[0].classes] == list(features.CLASS_NAMES)
    assert sum(c.score for c in result.classifications[1].classes) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("make, code, text", [
    (lambda: predict_request(images(1), name="pixels"), grpc.StatusCode.INVALID_ARGUMENT, "alias not found"),
    (lambda: predict_request(images(1).astype(np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "uint8"),
    (lambda: predict_request(images(1)[..., 0]), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
    (lambda: predict_request(images(1), signature="nope"), grpc.StatusCode.FAILED_PRECONDITION, "signature"),
    (lambda: predict_request(images(1), model="other"), grpc.StatusCode.NOT_FOUND, "other"),
    (lambda: predict_request(images(1), version=999), grpc.StatusCode.NOT_FOUND, "999"),
    # 600 faces = 1.4 MB, over the 1 MB bound this server was started with
    (lambda: predict_request(images(600)), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
])
def test_grpc_error_codes(running, make, code, text):
    _, prediction, _ = running
    request = make()
    with pytest.raises(grpc.RpcError) as raised:
        prediction.Predict(request, timeout=10)
    assert raised.value.code() == code
    assert text in raised.value.details()


def test_status_of_unknown_version_is_not_found(running):
    _, _, model_service = running
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "fer"
    request.model_spec.version.value = 999
    with pytest.raises(grpc.RpcError) as raised:
        model_service.GetModelStatus(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_status_metadata_and_predict(running):
    server, prediction, _ = running
    version = server.store.get("fer").version
    status, body = rest(server, "/v1/models/fer")
    assert status == 200 and body["model_version_status"][0] == {
        "version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    status, body = rest(server, "/v1/models/fer/metadata")
    assert status == 200 and "serving_default" in body["metadata"]["signature_def"]["signature_def"]
    batch = images(2, seed=3)
    expected = tf.make_ndarray(prediction.Predict(predict_request(batch), timeout=10).outputs["probabilities"])
    status, rows = rest(server, "/v1/models/fer:predict", {"instances": batch.tolist()})
    assert status == 200
    np.testing.assert_allclose(rows["predictions"], expected, rtol=1e-5)
    status, columns = rest(server, f"/v1/models/fer/versions/{version}:predict", {"inputs": {"image": batch.tolist()}})
    assert status == 200
    np.testing.assert_allclose(columns["outputs"], expected, rtol=1e-5)
    status, classified = rest(server, "/v1/models/fer:classify", {"signature_name": "classify", "examples": [
        {"pixels": [128] * features.NUM_PIXELS}]})
    assert status == 200 and [c[0] for c in classified["results"][0]] == list(features.CLASS_NAMES)


@pytest.mark.parametrize("path, body, status, text", [
    ("/v1/models/other:predict", {"instances": [[0]]}, 404, "other"),
    ("/v1/models/fer/versions/999", None, 404, "999"),
    ("/v1/models/fer:predict", {"instances": [[[[300]] * 48] * 48]}, 400, "not of expected type: uint8"),
    ("/v1/models/fer:predict", {"instances": [[[1, 2]]]}, 400, "shape"),
    ("/v1/models/fer:predict", {"inputs": {"pixels": [[0]]}}, 400, "Missing named input: image"),
    ("/v1/models/fer:predict", {"nothing": 1}, 400, "instances"),
    ("/v1/models/fer/labels", None, 400, "Malformed"),
])
def test_rest_errors(running, path, body, status, text):
    got_status, got = rest(running[0], path, body)
    assert got_status == status and text in got["error"]


def test_new_version_is_picked_up_without_failing_requests_in_flight(running, model_base, transform_output_dir):
    server, prediction, _ = running
    before = server.store.get("fer").version
    batch = images(1, value=100)
    old = tf.make_ndarray(prediction.Predict(predict_request(batch), timeout=10).outputs["probabilities"])
    failures, answered, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                response = prediction.Predict(predict_request(batch), timeout=30)
                answered.append(response.model_spec.version.value)
            except grpc.RpcError as e:
                failures.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    staging = model_base.parent / "staging"
    export_version(transform_output_dir[0], str(staging), bias=3.0)
    shutil.move(str(staging), str(model_base / str(before + 1)))  # a push: the version appears whole
    deadline = time.time() + 60
    while server.store.get("fer").version != before + 1 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert server.store.get("fer").version == before + 1
    assert not failures and before in answered and before + 1 in answered
    new = tf.make_ndarray(prediction.Predict(predict_request(batch), timeout=10).outputs["probabilities"])
    assert new[0, 0] > old[0, 0] + 0.1  # the new weights answer
    status, body = rest(server, "/v1/models/fer")
    assert [s["state"] for s in body["model_version_status"]] == ["AVAILABLE", "END"]


def test_server_side_batching_joins_concurrent_requests_and_answers_each(model_base, tmp_path):
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\n")
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=None, enable_batching=True,
                                batching_parameters_file=str(parameters))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    inputs = [images(1 + i % 3, seed=i) for i in range(32)]
    answers, failures = {}, []

    def client(indices):
        for i in indices:
            try:
                answers[i] = tf.make_ndarray(stub.Predict(predict_request(inputs[i]), timeout=30).outputs["probabilities"])
            except grpc.RpcError as e:
                failures.append(e)

    try:
        threads = [threading.Thread(target=client, args=(range(k, 32, 8),)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        local = tf.saved_model.load(server.store.get("fer").path).signatures["serving_default"]
        assert not failures and len(answers) == 32
        for i, array in enumerate(inputs):  # each request gets its own rows back
            np.testing.assert_allclose(answers[i], local(image=tf.constant(array))["probabilities"].numpy(),
                                       rtol=1e-5, atol=1e-6)
        batcher = server.service.batcher
        assert batcher.requests == 32 and batcher.batches < 32  # some requests shared a batch
        with pytest.raises(grpc.RpcError) as raised:  # validation still happens before batching
            stub.Predict(predict_request(images(1).astype(np.float32)), timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
        server.stop()
