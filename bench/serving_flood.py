"""Connection flood: `fer-pipeline serve` (its own process, the shipped model, default limits)
answering valid REST Predicts while other connections stay silent or trickle (issue 26).

Phases of DURATION seconds each, in one run, after a warm-up:
1. baseline: the valid clients alone, each Predict on a new connection (1-4 faces);
2. silent: the same clients while a flooder process holds SILENT connections open that never
   send a byte (one the server closes is reopened at once, so SILENT stay open);
3. silent + trickle: the same, plus TRICKLE connections each sending one header byte a second
   (reopened when the server cuts them).
Then the flood stops, and the server must still answer. Last, the cost of a connection:
HOLD silent connections (default 4,000, under the 4,096 cap) are held open and the server's
RSS and open files are read against the same server without them, with a valid Predict's
latency while they are held.

Goals: in phases 2 and 3 every valid Predict is answered 200 and their p99 <= 1 s; RSS after
the flood <= idle RSS + 300 MB; the server up; its log shows the open-file limit it raised.

    .venv/bin/python bench/serving_flood.py                       # the shipped model, 30 s a phase
    .venv/bin/python bench/serving_flood.py --rest-max-connections 512   # a flood above the cap: eviction
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time

from serving_common import REPO, free_port, percentile, run_threads_for

import numpy as np

GOAL_P99_MS, GOAL_RSS_GROWTH_MB = 1000.0, 300
TRICKLE_HEADER = b"POST /v1/models/fer:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100_000


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    def __init__(self, model_base_path, extra_args):
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", f"--model_base_path={model_base_path}",
             f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *extra_args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log = []
        for line in self.process.stdout:
            self.log.append(line.rstrip())
            if "REST connections: at most" in line:
                break
        else:
            raise RuntimeError("the server did not start:\n" + "\n".join(self.log[-20:]))

        def drain():
            for line in self.process.stdout:
                self.log.append(line.rstrip())
        threading.Thread(target=drain, daemon=True).start()

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


# -- valid clients: each Predict on a new connection -------------------------------------------------
def predict_once(port, body, rows, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/v1/models/fer:predict", body, {"Connection": "close"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            return f"{response.status}: {payload[:160]!r}"
        if len(json.loads(payload)["predictions"]) != rows:
            return "wrong number of predictions"
        return None
    finally:
        connection.close()


def valid_client(port, stop, latencies, failures, seed):
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        faces = rng.integers(0, 256, (int(rng.integers(1, 5)), 48, 48, 1)).astype(np.uint8)
        body = json.dumps({"instances": faces.tolist()})
        start = time.perf_counter()
        try:
            failure = predict_once(port, body, len(faces))
        except Exception as e:  # noqa: BLE001  (a failed valid request is what this counts)
            failure = f"{type(e).__name__}: {str(e)[:160]}"
        if failure:
            failures.append(failure)
        else:
            latencies.append(time.perf_counter() - start)


def phase(server, duration, clients, name):
    stop = threading.Event()
    latencies, failures, peak = [], [], [0.0, 0]
    threads = [threading.Thread(target=valid_client, args=(server.rest_port, stop, latencies, failures, i))
               for i in range(clients)]

    def sample():
        peak[0] = max(peak[0], rss_mb(server.process.pid))
        peak[1] = max(peak[1], open_fds(server.process.pid))
    elapsed = run_threads_for(threads, duration, stop, sample, every=0.25)
    return {"phase": name, "seconds": round(elapsed, 1), "valid_clients": clients,
            "valid_requests": len(latencies) + len(failures), "valid_200": len(latencies),
            "valid_failed": len(failures), "first_failures": failures[:5],
            "valid_per_s": round(len(latencies) / elapsed, 1),
            "valid_p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "valid_p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
            "valid_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "server_peak_rss_sampled_mb": round(peak[0], 1), "server_peak_open_fds_sampled": peak[1]}


# -- the flooder: its own process, asyncio ------------------------------------------------------------
async def _flood(port, silent, trickle, ready_after):
    stats = {"silent_connects": 0, "silent_closed_by_server": 0, "trickle_connects": 0,
             "trickle_bytes_sent": 0, "trickle_answers": {}, "trickle_closed_unanswered": 0, "connect_errors": 0,
             "open_silent": 0, "open_trickle": 0}

    async def connect():
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(0.05)

    async def silent_one():
        while True:
            reader, writer = await connect()
            stats["silent_connects"] += 1
            stats["open_silent"] += 1
            try:
                await reader.read(65536)  # EOF (or an answer): the server let it go
            except OSError:
                pass
            stats["open_silent"] -= 1
            stats["silent_closed_by_server"] += 1
            writer.close()

    async def trickle_one(i):
        await asyncio.sleep((i % 100) / 100)  # spread over the second
        while True:
            reader, writer = await connect()
            stats["trickle_connects"] += 1
            stats["open_trickle"] += 1
            answer = b""
            try:
                for offset in range(len(TRICKLE_HEADER)):
                    writer.write(TRICKLE_HEADER[offset:offset + 1])
                    stats["trickle_bytes_sent"] += 1
                    try:
                        answer = await asyncio.wait_for(reader.read(65536), 1.0)
                        break  # an answer or EOF: the server cut it
                    except asyncio.TimeoutError:
                        continue
            except OSError:
                pass
            stats["open_trickle"] -= 1
            match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
            if match:
                code = match.group(1).decode()
                stats["trickle_answers"][code] = stats["trickle_answers"].get(code, 0) + 1
            else:
                stats["trickle_closed_unanswered"] += 1
            writer.close()

    tasks = [asyncio.ensure_future(silent_one()) for _ in range(silent)]
    tasks += [asyncio.ensure_future(trickle_one(i)) for i in range(trickle)]
    deadline = time.monotonic() + 60
    while stats["open_silent"] < silent * ready_after and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # the tricklers have all begun
    print(json.dumps({"ready": True, **stats}), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    samples = []
    while not stopped.is_set():
        samples.append((stats["open_silent"], stats["open_trickle"]))
        try:
            await asyncio.wait_for(stopped.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    for t in tasks:
        t.cancel()
    stats["open_silent_min"] = min(s for s, _ in samples) if samples else None
    stats["open_silent_mean"] = round(sum(s for s, _ in samples) / len(samples), 1) if samples else None
    stats["open_trickle_min"] = min(t for _, t in samples) if samples else None
    stats["open_trickle_mean"] = round(sum(t for _, t in samples) / len(samples), 1) if samples else None
    print(json.dumps(stats), flush=True)


def flooder_main(port, silent, trickle):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_flood(port, silent, trickle, ready_after=0.95))


class Flooder:
    def __init__(self, port, silent, trickle):
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flooder", str(port),
                                         str(silent), str(trickle)], stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self.process.stdout.readline())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--flooder":
        flooder_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-base-path", default=None, help="default: the shipped model")
    p.add_argument("--duration", type=float, default=30.0, help="seconds a phase (default: %(default)s)")
    p.add_argument("--valid-clients", type=int, default=4)
    p.add_argument("--silent", type=int, default=1000)
    p.add_argument("--trickle", type=int, default=300)
    p.add_argument("--rest-max-connections", type=int, default=None, help="passed to serve (default: its own)")
    p.add_argument("--hold", type=int, default=4000, help="silent connections held to measure their cost; 0: skip")
    args = p.parse_args()
    from core import features

    extra = [f"--rest_max_connections={args.rest_max_connections}"] if args.rest_max_connections else []
    server = Server(args.model_base_path or features.SHIPPED_MODEL_BASE_PATH, extra)
    floods = {}
    try:
        warm = phase(server, 5, args.valid_clients, "warm-up")
        idle = rss_mb(server.process.pid)
        idle_fds = open_fds(server.process.pid)
        baseline = phase(server, args.duration, args.valid_clients, "baseline")
        flooder = Flooder(server.rest_port, args.silent, 0)
        silent = phase(server, args.duration, args.valid_clients, f"{args.silent} silent")
        floods["silent"] = {"at_start": flooder.ready, "at_end": flooder.stop()}
        flooder = Flooder(server.rest_port, args.silent, args.trickle)
        trickle = phase(server, args.duration, args.valid_clients, f"{args.silent} silent + {args.trickle} trickling")
        floods["silent_and_trickle"] = {"at_start": flooder.ready, "at_end": flooder.stop()}
        time.sleep(2)  # the flood's sockets closed
        alive = server.process.poll() is None
        one_face = json.dumps({"instances": np.zeros((1, 48, 48, 1), np.uint8).tolist()})
        after = {"rss_mb": round(rss_mb(server.process.pid), 1),
                 "peak_rss_mb": round(rss_mb(server.process.pid, "VmHWM"), 1), "open_fds": open_fds(server.process.pid),
                 "predict_after_flood": predict_once(server.rest_port, one_face, 1) or "200"} if alive else {}
        hold = {}
        if alive and args.hold:
            before = (rss_mb(server.process.pid), open_fds(server.process.pid))
            flooder = Flooder(server.rest_port, args.hold, 0)
            held = (rss_mb(server.process.pid), open_fds(server.process.pid))
            start = time.perf_counter()
            answer = predict_once(server.rest_port, one_face, 1) or "200"
            hold = {"silent_held": flooder.ready["open_silent"], "server_rss_mb_without": round(before[0], 1),
                    "server_rss_mb_with": round(held[0], 1), "server_open_fds_without": before[1],
                    "server_open_fds_with": held[1],
                    "kb_per_connection": round((held[0] - before[0]) * 1024 / max(1, held[1] - before[1]), 1),
                    "predict_while_held": answer,
                    "predict_while_held_ms": round((time.perf_counter() - start) * 1000, 1)}
            flooder.stop()
    finally:
        server.stop()
    log_lines = [line for line in server.log if "Open-file limit" in line or "REST connection" in line
                 or "rest_max_connections" in line]
    fd_line = next((line for line in log_lines if "Open-file limit" in line), None)
    goals = {
        "silent_all_200": silent["valid_failed"] == 0 and silent["valid_200"] > 0,
        f"silent_p99_le_{GOAL_P99_MS:g}_ms": silent["valid_p99_ms"] is not None
        and silent["valid_p99_ms"] <= GOAL_P99_MS,
        "silent_and_trickle_all_200": trickle["valid_failed"] == 0 and trickle["valid_200"] > 0,
        f"silent_and_trickle_p99_le_{GOAL_P99_MS:g}_ms": trickle["valid_p99_ms"] is not None
        and trickle["valid_p99_ms"] <= GOAL_P99_MS,
        f"rss_after_le_idle_plus_{GOAL_RSS_GROWTH_MB}_mb": alive and after["rss_mb"] - idle <= GOAL_RSS_GROWTH_MB,
        "server_up_after": alive and after["predict_after_flood"] == "200",
        "fd_limit_raised_and_logged": fd_line is not None,
    }
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "server_args": extra, "server_log": log_lines, "warm_up_valid_requests": warm["valid_requests"],
                      "idle_rss_mb": round(idle, 1), "idle_open_fds": idle_fds, "after_flood": after, "hold": hold,
                      "phases": [baseline, silent, trickle], "floods": floods, "goals": goals}, indent=1))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
