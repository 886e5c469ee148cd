"""Hostile input against the local server: requests that declare more than they carry, HTTP
framing that lies, clients that stall, and more load than the server takes. Each gets a
bounded answer (a status code and a JSON error on REST, a status on gRPC), nothing is
allocated or run for a request that is refused, and the server keeps answering."""

import json
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from core import features
from serving import api, rest
from serving import server as local_server
from serving.batching import Batcher, QueueFull
from tests.serving.http_helpers import call_json, parse_response, raw_exchange

MB = 1024 * 1024
IMAGE = np.full((1,) + features.IMAGE_SHAPE, 7, np.uint8)


@pytest.fixture(scope="module")
def guarded(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0,
                                max_message_bytes=MB, max_batch_rows=16, read_timeout_s=1.0, idle_timeout_s=2.0)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                    options=[("grpc.max_send_message_length", 64 * MB)])
    yield server, prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()
    server.stop()


@pytest.fixture
def runs(monkeypatch):
    """Counts model runs: a refused request must not reach one."""
    count = {"n": 0}
    original = api.run

    def counted(*args, **kwargs):
        count["n"] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(api, "run", counted)
    return count


def declared(shape, values=(1,), dtype=types_pb2.DT_UINT8, content=b""):
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_content=content)
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
    proto.int_val.extend(values)
    return proto


def predict_with(proto, name="image"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    request.inputs[name].CopyFrom(proto)
    return request


def assert_still_serves(server, stub):
    response = stub.Predict(predict_with(tf.make_tensor_proto(IMAGE)), timeout=10)
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, features.NUM_CLASSES)
    status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict", {"instances": IMAGE.tolist()})
    assert status == 200 and len(body["predictions"]) == 1


# -- declared shapes ---------------------------------------------------------------------------
def test_a_43_byte_request_declaring_200000_rows_is_refused_unrun(guarded, runs):
    server, stub = guarded
    request = predict_with(declared([200000, 48, 48, 1]))
    assert request.ByteSize() < 50
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "200000 rows" in raised.value.details() and "at most 16 per request" in raised.value.details()
    assert runs["n"] == 0
    assert_still_serves(server, stub)


def test_rest_rows_above_the_bound_are_refused_unrun(guarded, runs):
    server, _ = guarded
    status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict",
                             {"instances": np.zeros((17,) + features.IMAGE_SHAPE, np.uint8).tolist()})
    assert status == 400 and "at most 16 per request (--max_batch_rows)" in body["error"]
    status, body = call_json(server.rest_port, "POST", "/v1/models/fer:classify",
                             {"signature_name": "classify", "examples": [{"pixels": [1]}] * 17})
    assert status == 400 and "at most 16 per request" in body["error"]
    assert runs["n"] == 0


LIMITS = api.Limits(max_message_bytes=MB, max_batch_rows=1000)
SPEC = tf.TensorSpec([None, 48, 48, 1], tf.uint8)


@pytest.mark.parametrize("proto, code, text", [
    (declared([500, 48, 48, 1]), "RESOURCE_EXHAUSTED", "takes 1152000 bytes, above the limit of 1048576"),
    (declared([-1, 48, 48, 1]), "INVALID_ARGUMENT", "dimension sizes must be >= 0"),
    (declared([2, 48, 48, 1], values=[1] * (2 * 2304 + 1)), "INVALID_ARGUMENT", "4609 values for a shape of 4608"),
    (declared([2, 48, 48, 1], values=(), content=b"\0" * 10), "INVALID_ARGUMENT", "tensor_content holds 10 bytes"),
    (declared([1, 48, 48, 1], dtype=999), "INVALID_ARGUMENT", "unknown dtype enum 999"),
    (declared([1, 48, 48, 1], dtype=types_pb2.DT_DOUBLE), "INVALID_ARGUMENT", "to be uint8 but double"),
    (declared([1, 48, 48]), "INVALID_ARGUMENT", "the signature expects [-1, 48, 48, 1]"),
    (declared([2**62, 2**62, 48, 1]), "INVALID_ARGUMENT", "at most 1000 per request"),
])
def test_decode_refuses_before_allocating(proto, code, text):
    with pytest.raises(api.ApiError) as raised:
        api.decode_proto("image", proto, SPEC, LIMITS)
    assert raised.value.code == code and text in str(raised.value)


def test_unknown_rank_is_refused():
    proto = declared([1])
    proto.tensor_shape.unknown_rank = True
    with pytest.raises(api.ApiError, match="known shape"):
        api.decode_proto("image", proto, SPEC, LIMITS)


def test_a_short_value_list_still_means_what_tf_makes_of_it():
    array = api.decode_proto("image", declared([2, 48, 48, 1], values=[5]), SPEC, LIMITS)
    assert array.shape == (2, 48, 48, 1) and (array == 5).all()


# -- HTTP framing --------------------------------------------------------------------------------
def _post(length_header: str, body: bytes = b"{}") -> bytes:
    return (f"POST /v1/models/fer:predict HTTP/1.1\r\nHost: x\r\n{length_header}"
            f"Content-Type: application/json\r\n\r\n").encode() + body


@pytest.mark.parametrize("request_bytes, status, text", [
    (_post(""), 411, "Content-Length"),
    (_post("Content-Length: abc\r\n"), 400, "Content-Length"),
    (_post("Content-Length: -1\r\n"), 400, "Content-Length"),
    (_post("Content-Length: 2000000\r\n", b""), 413, "2000000 bytes exceeds the limit of 1048576"),
    (b"GET /v1/models/fer HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "Malformed HTTP"),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "Malformed HTTP request"),
])
def test_lying_framing_gets_a_json_error_and_a_close(guarded, request_bytes, status, text):
    start = time.monotonic()
    got_status, headers, body = parse_response(raw_exchange(guarded[0].rest_port, request_bytes))
    assert time.monotonic() - start < 5  # answered on the headers, not after waiting for a body
    assert got_status == status and headers["content-type"] == "application/json"
    assert text in json.loads(body)["error"] and headers["connection"] == "close"


def test_a_48_mb_body_with_a_negative_length_is_not_read(guarded):
    port = guarded[0].rest_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(_post("Content-Length: -1\r\n", b""))
        status, _, body = parse_response(s.recv(65536))
        assert status == 400
        sent = 0
        try:  # the server has closed: the body goes nowhere
            for _ in range(48):
                s.sendall(b"0" * MB)
                sent += 1
        except OSError:
            pass
    assert sent < 48


def _chunked(body: bytes, chunk: int = 4096) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + chunk]), body[i:i + chunk]) for i in range(0, len(body), chunk)]
    return (b"POST /v1/models/fer:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(parts) + b"0\r\n\r\n")


def test_chunked_bodies_are_read_up_to_the_bound(guarded):
    port = guarded[0].rest_port
    body = json.dumps({"instances": IMAGE.tolist()}).encode()
    status, _, answer = parse_response(raw_exchange(port, _chunked(body), wait_for_close=False))
    assert status == 200 and len(json.loads(answer)["predictions"]) == 1
    status, headers, answer = parse_response(raw_exchange(port, _chunked(b" " * (MB + 10), chunk=65536)))
    assert status == 413 and "exceeds the limit" in json.loads(answer)["error"]


def test_a_stalled_request_is_answered_408_and_an_idle_connection_closed(guarded):
    port = guarded[0].rest_port
    start = time.monotonic()
    status, _, body = parse_response(raw_exchange(port, _post("Content-Length: 100\r\n", b"{")))
    assert status == 408 and "not received within 1 s" in json.loads(body)["error"]
    assert 0.9 < time.monotonic() - start < 5
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # keep-alive, then silence
        s.sendall(b"GET /v1/models/fer HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        while s.recv(65536):
            pass
        assert 1.5 < time.monotonic() - start < 6  # closed by the server after its 2 s idle timeout


def test_headers_trickled_a_byte_at_a_time_are_cut_off(guarded):
    port = guarded[0].rest_port
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        received = b""
        for byte in b"GET /v1/models/fer HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - start > 3:
                break
        try:
            received = s.recv(65536)
        except OSError:
            pass
    status, _, body = parse_response(received)
    assert status == 408 and time.monotonic() - start < 5  # the 1 s read timeout runs from the first byte


def test_deep_nesting_gets_a_json_error(guarded):
    port = guarded[0].rest_port
    for depth in (100_000, 900, 40):
        body = b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
        status, got = call_json(port, "POST", "/v1/models/fer:predict", raw=body)
        assert status == 400 and got["error"], depth


# -- load bounds -----------------------------------------------------------------------------------
def _hold_predicts(monkeypatch, release: threading.Event, on_enter):
    """Every Predict calls `on_enter()`, then waits for `release` (at most 30 s) before it runs."""
    original = api.predict_arrays

    def waiting(*args, **kwargs):
        on_enter()
        release.wait(30)
        return original(*args, **kwargs)
    monkeypatch.setattr(api, "predict_arrays", waiting)


@pytest.fixture
def blocked(model_base, monkeypatch):
    """A server with one worker per API and no queue, whose Predict waits for `release`."""
    release, entered = threading.Event(), threading.Event()
    _hold_predicts(monkeypatch, release, entered.set)
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0,
                                rest_workers=1, grpc_workers=1, queued_requests=0, request_timeout_s=2.0,
                                max_connections=4)
    yield server, release, entered
    release.set()
    server.stop()


def _background(fn):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn()))
    thread.start()
    return thread, result


def test_a_full_rest_pool_answers_503_at_once_and_a_slow_call_504(blocked):
    server, release, entered = blocked
    port = server.rest_port
    thread, first = _background(lambda: call_json(port, "POST", "/v1/models/fer:predict",
                                                  {"instances": IMAGE.tolist()}))
    assert entered.wait(10)
    start = time.monotonic()
    status, body = call_json(port, "GET", "/v1/models/fer")
    assert status == 503 and "Server busy" in body["error"] and time.monotonic() - start < 1
    thread.join(10)
    status, body = first["value"]
    assert status == 504 and "did not finish within 2 s" in body["error"]
    release.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the slot frees once the slow call ends
        status, _ = call_json(port, "GET", "/v1/models/fer")
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200


def test_a_full_grpc_pool_answers_resource_exhausted_at_once(blocked):
    server, release, entered = blocked
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        future = stub.Predict.future(predict_with(tf.make_tensor_proto(IMAGE)), timeout=30)
        assert entered.wait(10)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(predict_with(tf.make_tensor_proto(IMAGE)), timeout=10)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() - start < 1
        release.set()
        assert future.result().model_spec.name == "fer"
    finally:
        channel.close()


def test_connections_beyond_the_bound_get_503_only_when_all_have_a_request_in_flight(model_base, monkeypatch):
    """Idle connections are evicted for new ones (tests/serving/test_flood.py); requests in
    flight never are: with every place taken by one, a new connection gets 503, and the
    requests in flight are answered."""
    release, entered = threading.Event(), threading.Semaphore(0)
    _hold_predicts(monkeypatch, release, entered.release)
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=0, poll_seconds=0,
                                rest_workers=2, queued_requests=0, max_connections=2)
    try:
        port = server.rest_port
        calls = [_background(lambda: call_json(port, "POST", "/v1/models/fer:predict", {"instances": IMAGE.tolist()}))
                 for _ in range(2)]
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        start = time.monotonic()
        status, _, body = parse_response(raw_exchange(port, b"GET /v1/models/fer HTTP/1.1\r\n\r\n"))
        assert status == 503 and "Too many connections" in json.loads(body)["error"]
        assert time.monotonic() - start < 1 and server.rest.evictions == 0
        release.set()
        for thread, result in calls:
            thread.join(10)
            status, body = result["value"]
            assert status == 200 and len(body["predictions"]) == 1
    finally:
        release.set()
        server.stop()


def test_an_unexpected_error_is_a_500_json_and_a_grpc_internal(guarded, monkeypatch):
    server, stub = guarded

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(api, "predict_arrays", broken)
    status, body = call_json(server.rest_port, "POST", "/v1/models/fer:predict", {"instances": IMAGE.tolist()})
    assert (status, body) == (500, {"error": "Internal error: ZeroDivisionError"})
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(predict_with(tf.make_tensor_proto(IMAGE)), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INTERNAL and "Traceback" not in raised.value.details()


def test_the_batching_queue_is_bounded_and_full_means_unavailable():
    started, release = threading.Event(), threading.Event()

    def slow(image):
        started.set()
        release.wait(10)
        return {"probabilities": tf.zeros([tf.shape(image)[0], 7])}

    batcher = Batcher(max_batch_size=2, timeout_s=0.0, max_enqueued_batches=1)
    rows = {"image": np.zeros((2, 48, 48, 1), np.uint8)}
    first, _ = _background(lambda: batcher.run("k", slow, rows))
    assert started.wait(10)  # the first batch runs; the queue is empty again
    second, _ = _background(lambda: batcher.run("k", slow, rows))  # fills the queue's 2 rows
    time.sleep(0.2)
    with pytest.raises(QueueFull, match="batch scheduling queue .* is full"):
        batcher.run("k", slow, rows)
    with pytest.raises(api.ApiError) as raised:
        api.run(slow, rows, batcher, "k")
    assert raised.value.code == "UNAVAILABLE" and rest.HTTP_STATUS[raised.value.code] == 503
    release.set()
    first.join(10)
    second.join(10)
