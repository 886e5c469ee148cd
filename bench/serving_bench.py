"""Serving benchmarks on the local TF Serving-API server (`fer-pipeline serve`), server and
clients on the same machine, server in its own process:

1. One-face Predict latency through gRPC against calling the same SavedModel in-process
   (same run, alternating blocks). Goal: gRPC <= 1.3x in-process (p50).
2. Throughput of 8 concurrent clients (one face per request), without and with server-side
   batching.
3. Load: 8 concurrent clients x N requests while a new version is pushed: failed requests.
   Goal: zero.

    .venv/bin/python bench/serving_bench.py --model-base-path runs/demo/serving_model/fer
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time

from serving_common import ServerProcess, percentile

import numpy as np


def faces(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.uint8)


def latency(model_base_path, rounds, block):
    import tensorflow as tf

    from client.tfserving import FerClient
    from serving.model_store import list_versions

    version = list_versions(model_base_path)[-1]
    local = tf.saved_model.load(os.path.join(model_base_path, str(version))).signatures["serving_default"]
    server = ServerProcess(model_base_path)
    grpc_times, local_times = [], []
    try:
        with FerClient(server.target, timeout_s=5) as client:
            face = faces(1)
            for _ in range(20):  # warm both paths (tracing, channel)
                client.predict(face)
                local(image=tf.constant(face[..., None]))
            for _ in range(rounds):
                for _ in range(block):
                    t = time.perf_counter()
                    client.predict(face)
                    grpc_times.append(time.perf_counter() - t)
                for _ in range(block):
                    t = time.perf_counter()
                    local(image=tf.constant(face[..., None]))["probabilities"].numpy()
                    local_times.append(time.perf_counter() - t)
    finally:
        server.stop()
    result = {"grpc_p50_ms": percentile(grpc_times, 50), "grpc_p95_ms": percentile(grpc_times, 95),
              "in_process_p50_ms": percentile(local_times, 50), "in_process_p95_ms": percentile(local_times, 95),
              "requests_each": len(grpc_times)}
    result["ratio_p50"] = result["grpc_p50_ms"] / result["in_process_p50_ms"]
    return result


def hammer(target, clients, requests, on_progress=None):
    from client.tfserving import FerClient, ServingError

    failures, done, times = [], [0], []
    lock = threading.Lock()

    def run(k):
        with FerClient(target, timeout_s=10, retries=0) as client:
            face = faces(1, seed=k)
            for _ in range(requests):
                t = time.perf_counter()
                try:
                    client.predict(face)
                except ServingError as e:
                    failures.append(str(e))
                with lock:
                    times.append(time.perf_counter() - t)
                    done[0] += 1
                    if on_progress:
                        on_progress(done[0])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"clients": clients, "requests": clients * requests, "failed": len(failures),
            "requests_per_s": clients * requests / seconds, "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95), "first_failures": failures[:3]}


def throughput(model_base_path, clients, requests):
    results = {}
    for batching in (False, True):
        server = ServerProcess(model_base_path, batching=batching)
        try:
            hammer(server.target, clients, 10)  # warm
            results["with_batching" if batching else "without_batching"] = hammer(server.target, clients, requests)
        finally:
            server.stop()
    return results


def load_with_push(model_base_path, clients, requests):
    from serving.model_store import list_versions

    work = tempfile.mkdtemp(prefix="fer-serving-load-")
    base = os.path.join(work, "fer")
    newest = list_versions(model_base_path)[-1]
    shutil.copytree(os.path.join(model_base_path, str(newest)), os.path.join(base, "1"))
    server = ServerProcess(base)
    pushed = {}

    def push_halfway(done):
        if done == clients * requests // 2 and not pushed:
            pushed["at"] = done
            staging = os.path.join(work, "staging")
            shutil.copytree(os.path.join(base, "1"), staging)
            os.rename(staging, os.path.join(base, "2"))  # the Pusher's result appears whole

    try:
        result = hammer(server.target, clients, requests, on_progress=push_halfway)
        from client.tfserving import FerClient

        with FerClient(server.target) as client:
            result["served_version_after"] = client.status()[0][0]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["pushed_version_2_after_requests"] = pushed.get("at")
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-base-path", default="runs/demo/serving_model/fer")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--block", type=int, default=30)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=100, help="per client, throughput runs")
    p.add_argument("--load-requests", type=int, default=500, help="per client, load run with a push")
    args = p.parse_args()
    path = os.path.abspath(args.model_base_path)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "model_base_path": path}
    report["latency_one_face"] = latency(path, args.rounds, args.block)
    print(json.dumps(report["latency_one_face"]), flush=True)
    report["throughput"] = throughput(path, args.clients, args.requests)
    print(json.dumps(report["throughput"]), flush=True)
    report["load_with_push"] = load_with_push(path, args.clients, args.load_requests)
    print(json.dumps(report["load_with_push"]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
