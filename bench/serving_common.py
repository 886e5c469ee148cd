"""Shared by the serving benchmarks: the local TF Serving-API server in its own process (as
a server would be: its own interpreter, its own GIL), on free ports."""

import os
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`rest`: REST on a free port too (rest_port). `repo`: the checkout whose server code runs
    (another one's, to compare two versions of the server in one run)."""

    def __init__(self, model_base_path: str, batching: bool = False, rest: bool = False, repo: str = REPO):
        self.port = free_port()
        self.rest_port = free_port() if rest else None
        cmd = [sys.executable, "-m", "cli.main", "serve", "--model-base-path", model_base_path,
               "--port", str(self.port), "--rest-port", str(self.rest_port or 0)] + \
            (["--enable-batching"] if batching else [])
        env = dict(os.environ, PYTHONPATH=repo)  # that checkout's packages, not this one's
        self.process = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from client.tfserving import FerClient

        deadline = time.time() + 120
        with FerClient(self.target, retries=0, timeout_s=1.0) as client:
            while True:
                try:
                    client.status()
                    break
                except Exception:
                    if time.time() > deadline or self.process.poll() is not None:
                        raise RuntimeError("the server did not come up")
                    time.sleep(0.5)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def percentile(values, q):
    import numpy as np

    return float(np.percentile(np.asarray(values) * 1000.0, q))  # ms


def run_threads_for(threads, duration: float, stop, sample, every: float) -> float:
    """Starts `threads` and a sampler that calls `sample()` every `every` seconds, sets `stop`
    after `duration` seconds, joins them all: the wall seconds from start to the last join."""
    import threading

    def sampler():
        while not stop.is_set():
            sample()
            time.sleep(every)
    threads = list(threads) + [threading.Thread(target=sampler)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join(60)
    return time.perf_counter() - start

