"""Serving benchmarks on the local TF Serving-API server (`fer-pipeline serve`), server and
clients on the same machine, server in its own process:

1. One-face Predict latency through gRPC against calling the same SavedModel in-process
   (same run, alternating blocks). Goal: gRPC <= 1.3x in-process (p50).
2. Throughput of 8 concurrent clients (one face per request), without and with server-side
   batching.
3. Load: 8 concurrent clients x N requests while a new version is pushed: failed requests.
   Goal: zero.
4. REST (JSON "instances", one face a request, kept-alive connections): one client's latency
   and 8 clients' throughput. With --compare-repo OTHER, the same against a server started
   from that checkout (an older commit's worktree), in alternating blocks in the same run,
   so that load from elsewhere on the machine falls on both alike. Goal (issue 24): this
   checkout's REST within 5 % of the older one's.

    .venv/bin/python bench/serving_bench.py --model-base-path runs/demo/serving_model/fer
    .venv/bin/python bench/serving_bench.py --only rest --compare-repo ../old-worktree
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import tempfile
import threading
import time

from serving_common import ServerProcess, percentile

import numpy as np



def _run_clients(run, clients: int) -> float:
    """Runs `run(k)` on `clients` threads at once; the wall seconds until the last ends."""
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start

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

    seconds = _run_clients(run, clients)
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


class RestClient:
    """One kept-alive connection posting one face as TF Serving's row format."""

    def __init__(self, port, seed=0):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.body = json.dumps({"instances": faces(1, seed)[..., None].tolist()}).encode()

    def predict(self):
        self.connection.request("POST", "/v1/models/fer:predict", body=self.body,
                                headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200 or b"predictions" not in payload:
            raise RuntimeError(f"REST predict failed: {response.status} {payload[:200]!r}")

    def close(self):
        self.connection.close()


def _rest_round(port, clients, requests):
    """`clients` threads, `requests` each: (requests per second, [seconds per request])."""
    times, lock, failures = [], threading.Lock(), []

    def run(k):
        client = RestClient(port, seed=k)
        try:
            for _ in range(requests):
                t = time.perf_counter()
                try:
                    client.predict()
                except Exception as e:  # counted, reported
                    failures.append(str(e))
                with lock:
                    times.append(time.perf_counter() - t)
        finally:
            client.close()

    seconds = _run_clients(run, clients)
    if failures:
        raise RuntimeError(f"{len(failures)} REST requests failed: {failures[:3]}")
    return clients * requests / seconds, times


def rest(model_base_path, rounds, block, clients, requests, compare_repo=None):
    """REST latency (one client) and throughput (`clients` clients), this checkout's server and,
    with compare_repo, that checkout's, alternating block by block."""
    sides = {"this": ServerProcess(model_base_path, rest=True)}
    try:
        if compare_repo:
            sides["compared"] = ServerProcess(model_base_path, rest=True, repo=os.path.abspath(compare_repo))
        latency_times = {name: [] for name in sides}
        rates = {name: [] for name in sides}
        single = {name: RestClient(server.rest_port) for name, server in sides.items()}
        for name in sides:  # warm: tracing, connections, the first JSON encodings
            for _ in range(20):
                single[name].predict()
            _rest_round(sides[name].rest_port, clients, 5)
        for i in range(rounds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))  # A B, B A, ...: no side always first
            for name in order:
                for _ in range(block):
                    t = time.perf_counter()
                    single[name].predict()
                    latency_times[name].append(time.perf_counter() - t)
            for name in order:
                rate, _ = _rest_round(sides[name].rest_port, clients, requests)
                rates[name].append(rate)
        for client in single.values():
            client.close()
    finally:
        for server in sides.values():
            server.stop()
    result = {}
    for name in sides:
        result[name] = {"p50_ms": percentile(latency_times[name], 50), "p95_ms": percentile(latency_times[name], 95),
                        "requests_each": len(latency_times[name]),
                        "throughput_requests_per_s": float(np.median(rates[name])),
                        "throughput_rounds": [round(r, 1) for r in rates[name]]}
    if compare_repo:
        result["compared_repo"] = os.path.abspath(compare_repo)
        result["p50_this_over_compared"] = result["this"]["p50_ms"] / result["compared"]["p50_ms"]
        result["throughput_this_over_compared"] = (result["this"]["throughput_requests_per_s"]
                                                   / result["compared"]["throughput_requests_per_s"])
        # round by round (the two sides' rounds run back to back): slow drifts in the machine's
        # load cancel in each pair, not in the medians of all rounds
        result["throughput_round_ratios_median"] = float(np.median(np.array(rates["this"]) /
                                                                   np.array(rates["compared"])))
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-base-path", default="runs/demo/serving_model/fer")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--block", type=int, default=30)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=100, help="per client, throughput runs")
    p.add_argument("--load-requests", type=int, default=500, help="per client, load run with a push")
    p.add_argument("--rest-requests", type=int, default=25, help="per client and round, REST throughput")
    p.add_argument("--compare-repo", help="another checkout of this repository: its server's REST measured too")
    p.add_argument("--only", choices=["latency", "throughput", "load", "rest"], action="append",
                   help="run only these parts (repeatable; default: all)")
    args = p.parse_args()
    parts = set(args.only or ["latency", "throughput", "load", "rest"])
    path = os.path.abspath(args.model_base_path)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "model_base_path": path}
    if "latency" in parts:
        report["latency_one_face"] = latency(path, args.rounds, args.block)
        print(json.dumps(report["latency_one_face"]), flush=True)
    if "throughput" in parts:
        report["throughput"] = throughput(path, args.clients, args.requests)
        print(json.dumps(report["throughput"]), flush=True)
    if "load" in parts:
        report["load_with_push"] = load_with_push(path, args.clients, args.load_requests)
        print(json.dumps(report["load_with_push"]), flush=True)
    if "rest" in parts:
        report["rest"] = rest(path, args.rounds, args.block, args.clients, args.rest_requests, args.compare_repo)
        print(json.dumps(report["rest"]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
