"""Soak: `fer-pipeline serve` (its own process, default limits, REST and gRPC) under valid
Predicts mixed with the hostile requests that used to crash or hang it.

Two phases of DURATION seconds each, in one run:
1. quiet: the valid clients alone (half REST, half gRPC; 1-4 faces a request, back to back);
2. soak: the same valid clients plus as many hostile clients (16 in all by default), each
   looping over the hostile requests below.

Goals (issue 12): 0 crashes (the server is up at the end and every hostile request got an
answer), 0 failed valid requests, valid-request p99 in the soak within 2x the quiet p99, and
the server's peak RSS within +300 MB of its RSS when idle (after warm-up).

    .venv/bin/python bench/serving_soak.py            # the shipped model, 60 s a phase
"""

import argparse
import http.client
import json
import platform
import random
import re
import socket
import subprocess
import sys
import threading
import time

from serving_common import REPO, free_port, percentile, run_threads_for

import grpc
import numpy as np

GOAL_P99_RATIO, GOAL_RSS_GROWTH_MB = 2.0, 300


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024


class Server:
    def __init__(self, model_base_path):
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", f"--model_base_path={model_base_path}",
             f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.process.stdout:
            if "Running gRPC ModelServer" in line:
                break
        else:
            raise RuntimeError("the server did not start")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()  # drain its log

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


# -- valid clients ---------------------------------------------------------------------------------
def _faces(rng):
    return rng.integers(0, 256, (int(rng.integers(1, 5)), 48, 48, 1)).astype(np.uint8)


def valid_grpc(server, stop, latencies, failures, seed):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    rng = np.random.default_rng(seed)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set():
            faces = _faces(rng)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "fer"
            request.inputs["image"].CopyFrom(tf.make_tensor_proto(faces))
            start = time.perf_counter()
            try:
                response = stub.Predict(request, timeout=30)
                assert tf.make_ndarray(response.outputs["probabilities"]).shape == (len(faces), 7)
                latencies.append(time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001  (a failed valid request is what this counts)
                failures.append(f"gRPC: {type(e).__name__}: {str(e)[:200]}")


def valid_rest(server, stop, latencies, failures, seed):
    rng = np.random.default_rng(seed)
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)  # kept alive
    while not stop.is_set():
        faces = _faces(rng)
        body = json.dumps({"instances": faces.tolist()})
        start = time.perf_counter()
        try:
            connection.request("POST", "/v1/models/fer:predict", body)
            response = connection.getresponse()
            payload = response.read()
            assert response.status == 200, (response.status, payload[:200])
            assert len(json.loads(payload)["predictions"]) == len(faces)
            latencies.append(time.perf_counter() - start)
        except Exception as e:  # noqa: BLE001
            failures.append(f"REST: {type(e).__name__}: {str(e)[:200]}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    connection.close()


# -- hostile requests ------------------------------------------------------------------------------
def _raw(port, data, read_timeout=20.0, then_send=0):
    """Sends bytes, optionally keeps sending 1 MB chunks, and returns the status line's code
    (or None when the connection ended without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        try:
            for _ in range(then_send):
                s.sendall(b"0" * 2**20)
        except OSError:  # the server answered and closed: the rest of the body goes nowhere
            pass
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return int(match.group(1)) if match else None


def _post(length_header, body=b""):
    return (f"POST /v1/models/fer:predict HTTP/1.1\r\nHost: x\r\n{length_header}\r\n").encode() + body


def _declared_rows(rows):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, int_val=[1])
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (rows, 48, 48, 1)]))
    request.inputs["image"].CopyFrom(proto)
    return request


def _rest(port, method, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(method, path, body)
        response = connection.getresponse()
        payload = response.read()
        json.loads(payload)["error"]
        return response.status
    finally:
        connection.close()


def hostile_requests(server):
    port = server.rest_port
    deep = b'{"instances": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}"
    return [
        ("grpc_200000_rows_43_bytes", lambda stub: stub.Predict(_declared_rows(200_000), timeout=20)),
        ("grpc_5000_rows", lambda stub: stub.Predict(_declared_rows(5000), timeout=20)),
        ("rest_version_beyond_int64", lambda stub: _rest(port, "POST", f"/v1/models/fer/versions/{10**30}:predict",
                                                         "{}")),
        ("rest_classify_string_example", lambda stub: _rest(port, "POST", "/v1/models/fer:classify",
                                                            '{"examples": ["x"]}')),
        ("rest_signature_name_5", lambda stub: _rest(port, "POST", "/v1/models/fer:predict", '{"signature_name": 5}')),
        ("rest_content_length_abc", lambda stub: _raw(port, _post("Content-Length: abc\r\n", b"{}"))),
        ("rest_100000_deep_json", lambda stub: _rest(port, "POST", "/v1/models/fer:predict", deep)),
        ("rest_content_length_-1_48mb", lambda stub: _raw(port, _post("Content-Length: -1\r\n"), then_send=48)),
        ("rest_content_length_48mb", lambda stub: _raw(port, _post(f"Content-Length: {48 * 2**20}\r\n"),
                                                       then_send=48)),
        ("rest_no_content_length", lambda stub: _raw(port, _post("", b"{}"))),
        ("rest_put", lambda stub: _rest(port, "PUT", "/v1/models/fer", "{}")),
        ("rest_stalled_request", lambda stub: _raw(port, _post("Content-Length: 100\r\n", b"{"))),
    ]


def hostile_client(server, stop, answered, unanswered, seed):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    rng = random.Random(seed)
    requests = hostile_requests(server)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set():
            name, send = rng.choice(requests)
            try:
                status = send(stub)
                ok = status is not None
            except grpc.RpcError as e:
                status, ok = e.code().name, e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
                                                              grpc.StatusCode.INTERNAL)
            except Exception as e:  # noqa: BLE001  (no answer: a dropped connection, a timeout)
                status, ok = type(e).__name__, False
            (answered if ok else unanswered).setdefault(name, {}).setdefault(str(status), 0)
            (answered if ok else unanswered)[name][str(status)] += 1


# -- phases ----------------------------------------------------------------------------------------
def phase(server, duration, valid_clients, hostile_clients):
    stop = threading.Event()
    latencies, failures, answered, unanswered, peak = [], [], {}, {}, [0.0]
    threads = []
    for i in range(valid_clients):
        target = valid_rest if i % 2 == 0 else valid_grpc
        threads.append(threading.Thread(target=target, args=(server, stop, latencies, failures, i)))
    for i in range(hostile_clients):
        threads.append(threading.Thread(target=hostile_client, args=(server, stop, answered, unanswered, 100 + i)))

    def sample():
        peak[0] = max(peak[0], rss_mb(server.process.pid))
    elapsed = run_threads_for(threads, duration, stop, sample, every=0.2)
    return {"seconds": round(elapsed, 1), "valid_clients": valid_clients, "hostile_clients": hostile_clients,
            "valid_requests": len(latencies) + len(failures), "valid_failed": len(failures),
            "first_failures": failures[:5], "valid_per_s": round(len(latencies) / elapsed, 1),
            "valid_p50_ms": round(percentile(latencies, 50), 1), "valid_p99_ms": round(percentile(latencies, 99), 1),
            "hostile_answered": answered, "hostile_unanswered": unanswered,
            "peak_rss_sampled_mb": round(peak[0], 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-base-path", default=None, help="default: the shipped model")
    p.add_argument("--duration", type=float, default=60.0, help="seconds a phase (default: %(default)s)")
    p.add_argument("--valid-clients", type=int, default=8)
    p.add_argument("--hostile-clients", type=int, default=8)
    args = p.parse_args()
    from core import features

    server = Server(args.model_base_path or features.SHIPPED_MODEL_BASE_PATH)
    try:
        warm = phase(server, 5, args.valid_clients, 0)  # tracing, channels, first batches
        idle = rss_mb(server.process.pid)
        quiet = phase(server, args.duration, args.valid_clients, 0)
        soak = phase(server, args.duration, args.valid_clients, args.hostile_clients)
        alive = server.process.poll() is None
        peak = rss_mb(server.process.pid, "VmHWM") if alive else None
    finally:
        server.stop()
    ratio = soak["valid_p99_ms"] / quiet["valid_p99_ms"]
    goals = {
        "server_up_and_every_hostile_request_answered": alive and not soak["hostile_unanswered"],
        "no_failed_valid_request": quiet["valid_failed"] == 0 and soak["valid_failed"] == 0,
        f"soak_p99_within_{GOAL_P99_RATIO:g}x_quiet": ratio <= GOAL_P99_RATIO,
        f"peak_rss_within_{GOAL_RSS_GROWTH_MB}_mb_of_idle": peak is not None and peak - idle <= GOAL_RSS_GROWTH_MB,
    }
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
                      f"{__import__('os').cpu_count()} cores", "warm_up_valid_requests": warm["valid_requests"],
                      "idle_rss_mb": round(idle, 1), "peak_rss_mb": peak and round(peak, 1),
                      "p99_ratio": round(ratio, 2), "quiet": quiet, "soak": soak, "goals": goals}))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
