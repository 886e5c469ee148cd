"""A seeded, bounded fuzz of `fer-pipeline serve` (a separate process, so its memory is its
own): random JSON bodies, paths and methods on REST; random TensorProtos (dtypes, declared
shapes, carried values) and requests on gRPC. Every REST request gets an HTTP answer with a
JSON body ({"error"} unless 200), every gRPC call a status; none is a 500 / INTERNAL /
UNKNOWN (those mean an unplanned path); afterwards a valid Predict still works on both APIs,
and the server's peak RSS stayed within PEAK_RSS_GROWTH_MB of its warmed-up RSS."""

import base64
import http.client
import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)

from core import features
from tests.serving.conftest import free_port
from tests.serving.http_helpers import parse_response, raw_exchange, request_bytes

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261129
REST_REQUESTS, GRPC_REQUESTS = 1500, 1000
TIME_BOUND_S = 240  # the whole fuzz loop; each request also has its own timeout
# A request that got past the checks could allocate GBs (the 200,000-row case grew RSS by 7 GB
# before it segfaulted). The fuzz runs twice: with the checks capping a request at 1 MB of
# input (--max_message_mb 1) and at the server's defaults (16 MB, 256 rows), which is what
# the README's bound is about.
PEAK_RSS_GROWTH_MB = 400
SERVER_FLAGS = {"max_message_mb=1": ["--max_message_mb=1"], "defaults": []}
IMAGE = np.full((1,) + features.IMAGE_SHAPE, 9, np.uint8)


def _rss_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024


@pytest.fixture(scope="module", params=list(SERVER_FLAGS))
def serving_process(model_base, request):
    grpc_port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", f"--model_base_path={model_base}", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", *SERVER_FLAGS[request.param], "--file_system_poll_wait_seconds=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Running gRPC ModelServer" in line or not line:
            break
    assert process.poll() is None, "".join(lines)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield process, rest_port, channel
    channel.close()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def _valid_predicts(rest_port, channel):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(IMAGE))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, features.NUM_CLASSES)
    connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=30)
    connection.request("POST", "/v1/models/fer:predict", json.dumps({"instances": IMAGE.tolist()}))
    answer = connection.getresponse()
    assert answer.status == 200 and len(json.loads(answer.read())["predictions"]) == 1
    connection.close()


# -- random REST requests ------------------------------------------------------------------------
def _scalar(rng: random.Random):
    return rng.choice([
        lambda: rng.randint(-3, 300), lambda: rng.choice([2**31, -2**63, 2**64, 10**400]),
        lambda: rng.uniform(-1e6, 1e6), lambda: rng.choice([float("nan"), float("inf"), -0.0]),
        lambda: "".join(rng.choice("ab\u00e9\U0001f600\"\\") for _ in range(rng.randint(0, 6))),
        lambda: rng.choice([True, False, None]), lambda: {"b64": rng.choice(["aGk=", "!!", "", "aGk"])},
    ])()


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 5 or roll < 0.3:
        return _scalar(rng)
    if roll < 0.45:
        return {rng.choice(["image", "pixels", "b64", "x", ""]): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if roll < 0.6:  # a regular block of random shape and one element type
        shape = [rng.choice([0, 1, 2, 3, 47, 48]) for _ in range(rng.randint(1, 4))]
        if np.prod(shape) > 20000:
            shape = shape[:2]
        return np.full(shape, _scalar(rng) if rng.random() < 0.3 else rng.randint(0, 255)).tolist()
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if roll < 0.12:
        return b"[" * rng.randint(1, 5000) + b"1"
    if roll < 0.2:
        return json.dumps({"instances": np.full((rng.randint(1, 3), 48, 48, 1), rng.randint(0, 255)).tolist()}).encode()
    doc = {}
    for key in rng.sample(["instances", "inputs", "signature_name", "examples", "context", "other"], rng.randint(0, 3)):
        doc[key] = rng.choice(["", "classify", "serving_default", "__saved_model_init_op"]) \
            if key == "signature_name" and rng.random() < 0.6 else _value(rng)
    text = json.dumps(doc)
    return text[:rng.randint(0, len(text))].encode() if rng.random() < 0.1 else text.encode()


def _path(rng: random.Random) -> str:
    junk = "".join(rng.choice("aZ09/:%._-~é") for _ in range(rng.randint(0, 12)))
    return rng.choice([
        f"/v1/models/{rng.choice(['fer', 'FER', 'x', '', '%66er', junk])}"
        + rng.choice(["", ":predict", ":classify", ":regress", ":PREDICT", "/metadata", "/versions/1",
                      f"/versions/{rng.choice([0, 1, 2, 2**63, 10**30])}:predict", f"/labels/{junk}:predict",
                      f"/labels/{junk}", junk]),
        "/v1/" + junk, "/" + junk, "/monitoring/prometheus/metrics", "/v1/models/fer:predict?x=" + junk,
    ])


def _assert_rest_answer(method, path, status, headers, payload):
    context = f"{method} {path} -> {status} {payload[:300]!r}"
    assert 100 <= status < 600 and status != 500, context
    if method == "HEAD" or status == 200 and path.startswith("/monitoring"):
        return
    if method == "OPTIONS" and status == 200:  # a CORS preflight with an Origin: TF Serving's empty 200
        assert payload == b"", context
        return
    assert headers.get("content-type") == "application/json", context
    assert int(headers["content-length"]) == len(payload), context
    document = json.loads(payload)
    if status != 200:
        assert set(document) == {"error"} and isinstance(document["error"], str) and document["error"], context


# -- random gRPC requests ------------------------------------------------------------------------
_DTYPES = [types_pb2.DT_UINT8] * 6 + [types_pb2.DT_FLOAT, types_pb2.DT_STRING, types_pb2.DT_INT64,
                                      types_pb2.DT_BOOL, types_pb2.DT_HALF, types_pb2.DT_COMPLEX64,
                                      types_pb2.DT_VARIANT, types_pb2.DT_RESOURCE, 0, 999]


def _tensor(rng: random.Random) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=rng.choice(_DTYPES))
    rank = rng.choice([0, 1, 3, 4, 4, 4, 5])
    dims = [rng.choice([1, 1, 2, 48, 48, 0, 17, 300, 200000, -1, 2**40]) for _ in range(rank)]
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims], unknown_rank=rng.random() < 0.05))
    fill = rng.random()
    if fill < 0.3:
        proto.tensor_content = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2304, 4608, 5000])))
    elif fill < 0.8:
        count = rng.choice([0, 1, 2, 2304, 2305])
        if proto.dtype == types_pb2.DT_STRING:
            proto.string_val.extend(bytes([rng.randrange(256)]) * rng.randint(0, 8) for _ in range(min(count, 50)))
        else:
            proto.int_val.extend(rng.randint(-2**31, 2**31 - 1) for _ in range(count))
            proto.float_val.extend(rng.uniform(-1, 1) for _ in range(rng.choice([0, 0, 3])))
    return proto


def _grpc_call(rng: random.Random, prediction, model_service):
    roll = rng.random()
    if roll < 0.7:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = rng.choice(["fer"] * 8 + ["", "x"])
        request.model_spec.signature_name = rng.choice(["", "", "", "serving_default", "classify", "nope"])
        if rng.random() < 0.1:
            request.model_spec.version.value = rng.choice([1, 2, -1])
        for _ in range(rng.choice([1, 1, 1, 0, 2])):
            request.inputs[rng.choice(["image"] * 5 + ["inputs", "x"])].CopyFrom(_tensor(rng))
        if rng.random() < 0.1:
            request.output_filter.append(rng.choice(["probabilities", "nope"]))
        return prediction.Predict, request
    if roll < 0.85:
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "fer"
        request.model_spec.signature_name = rng.choice(["classify", "", "nope"])
        target = (request.input.example_list_with_context if rng.random() < 0.3 else request.input.example_list)
        if target is request.input.example_list_with_context:
            target.context.features.feature["pixels"].int64_list.value.extend(
                [rng.randint(0, 255)] * rng.choice([0, 1, 2304]))
        for _ in range(rng.choice([0, 1, 2, 20])):
            example = target.examples.add()
            kind = rng.choice(["int64_list", "float_list", "bytes_list"])
            feature = example.features.feature[rng.choice(["pixels", "other"])]
            if kind == "int64_list":
                feature.int64_list.value.extend([rng.randint(-5, 300)] * rng.choice([1, 2304]))
            elif kind == "float_list":
                feature.float_list.value.extend([rng.random()] * rng.choice([1, 2304]))
            else:
                feature.bytes_list.value.append(base64.b64encode(bytes(rng.randint(0, 20))))
        return prediction.Classify, request
    if roll < 0.93:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = rng.choice(["fer", "x"])
        request.metadata_field.extend(rng.sample(["signature_def", "other"], rng.randint(0, 2)))
        return prediction.GetModelMetadata, request
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = rng.choice(["fer", "x", ""])
    if rng.random() < 0.5:
        request.model_spec.version.value = rng.choice([1, 5])
    return model_service.GetModelStatus, request


def test_fuzz(serving_process):
    process, rest_port, channel = serving_process
    _valid_predicts(rest_port, channel)  # warm both paths before the baseline
    warm_rss = _rss_mb(process.pid, "VmRSS")
    rng = random.Random(SEED)
    start = time.monotonic()
    methods = ["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    statuses = {}
    for i in range(REST_REQUESTS):
        method, path = rng.choice(methods), quote(_path(rng), safe="/:%._-~?=")  # http.client sends ASCII only
        body = _body(rng) if method in ("POST", "PUT", "PATCH") or rng.random() < 0.1 else None
        headers = {"Origin": "http://x"} if rng.random() < 0.2 else {}
        # A raw socket, not http.client: the server may answer (413) and close before a body is
        # all sent, and the answer must still be read.
        answer = raw_exchange(rest_port, request_bytes(method, path, body, headers), timeout=30)
        assert answer, f"no answer to {method} {path}"
        status, response_headers, payload = parse_response(answer)
        statuses[status] = statuses.get(status, 0) + 1
        _assert_rest_answer(method, path, status, response_headers, payload)
        assert time.monotonic() - start < TIME_BOUND_S, f"REST request {i}"
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    model_service = model_service_pb2_grpc.ModelServiceStub(channel)
    codes = {}
    for i in range(GRPC_REQUESTS):
        rpc, request = _grpc_call(rng, prediction, model_service)
        try:
            rpc(request, timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
            assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (i, request, e.details())
        codes[code.name] = codes.get(code.name, 0) + 1
        assert time.monotonic() - start < TIME_BOUND_S, f"gRPC request {i}"
    assert process.poll() is None  # still up
    _valid_predicts(rest_port, channel)
    peak = _rss_mb(process.pid, "VmHWM")
    print(f"fuzz ({' '.join(process.args[7:-1]) or 'default limits'}): {REST_REQUESTS} REST + {GRPC_REQUESTS} gRPC in {time.monotonic() - start:.1f} s, REST statuses {statuses}, gRPC codes {codes}, "
          f"RSS warm {warm_rss:.0f} MB, peak {peak:.0f} MB")
    # the fuzz reached both sides of the checks on both APIs
    assert codes.get("OK", 0) > 0 and codes.get("INVALID_ARGUMENT", 0) > 0
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0
    assert peak - warm_rss < PEAK_RSS_GROWTH_MB
