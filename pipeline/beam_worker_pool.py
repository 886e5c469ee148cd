"""A Beam SDK worker pool (the EXTERNAL environment's server) that runs from this project's
own environment: `fer-pipeline beam-workers --port P --workers N`, or
`python -m pipeline.beam_worker_pool`.

It is Beam's worker_pool_main with what a pool serving this project needs:
- workers start with this interpreter (`sys.executable`), the project root on PYTHONPATH and
  TF_USE_LEGACY_KERAS=1 (the Transform graph is tf_keras). Beam's pool runs `python` from
  PATH: a pool started outside the venv starts workers that cannot import Beam, and the job
  waited for them forever;
- at most N workers live at once; a request beyond that waits for a slot, then fails;
- each worker's output goes to LOG_DIR/worker-<id>.log (Beam's pool pipes it and never reads
  the pipe), and each exit is logged with its code and CPU seconds, with the log's tail
  when the code is not 0.

On a cluster the same role is played by the Beam Python SDK container in worker-pool mode
(`--worker_pool`), as a sidecar of each Flink task manager (kubeflow/flink/).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Dict, List, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOT_WAIT_S = 30.0
READY_LINE = "beam worker pool listening on "

_LOGGER = logging.getLogger("beam_worker_pool")


def worker_environment(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment a worker process needs to import this project's Beam stages."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), env.get("PATH", "")))
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def make_servicer(max_workers: int, log_dir: str, worker_command: Optional[List[str]] = None):
    """The pool's gRPC servicer. `worker_command` replaces the interpreter (tests use it to
    start a worker that dies)."""
    from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc

    class Servicer(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
        def __init__(self):
            self._slots = threading.Semaphore(max_workers)
            self._workers: Dict[str, subprocess.Popen] = {}
            self._lock = threading.Lock()
            self._env = worker_environment()

        def StartWorker(self, request, context):
            if not self._slots.acquire(timeout=SLOT_WAIT_S):
                return beam_fn_api_pb2.StartWorkerResponse(
                    error=f"all {max_workers} workers of the pool are busy (waited {SLOT_WAIT_S:.0f} s); "
                          f"lower --sdk_worker_parallelism or start the pool with more --workers")
            code = ("from apache_beam.runners.worker.sdk_worker import SdkHarness; "
                    f"SdkHarness({request.control_endpoint.url!r}, worker_id={request.worker_id!r}).run()")
            command = (worker_command or [sys.executable]) + ["-c", code]
            log_path = os.path.join(log_dir, f"worker-{request.worker_id}.log")
            try:
                with open(log_path, "w") as log:
                    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self._env,
                                            cwd=REPO_ROOT, close_fds=True)
            except OSError as e:
                self._slots.release()
                return beam_fn_api_pb2.StartWorkerResponse(error=f"cannot start {command[0]}: {e}")
            with self._lock:
                self._workers[request.worker_id] = proc
            _LOGGER.info("worker %s started: pid %d, log %s", request.worker_id, proc.pid, log_path)
            threading.Thread(target=self._wait, args=(request.worker_id, proc, log_path), daemon=True).start()
            return beam_fn_api_pb2.StartWorkerResponse()

        def _wait(self, worker_id, proc, log_path):
            started = time.monotonic()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
            except ChildProcessError:  # reaped by a poll() in StopWorker
                proc.wait()
                cpu = float("nan")
            with self._lock:
                self._workers.pop(worker_id, None)
            self._slots.release()
            if proc.returncode in (0, -signal.SIGTERM):
                _LOGGER.info("worker %s (pid %d) exited %d after %.1f s, cpu %.2f s",
                             worker_id, proc.pid, proc.returncode, time.monotonic() - started, cpu)
            else:
                _LOGGER.error("worker %s (pid %d) exited %d after %.1f s, cpu %.2f s; its log ends:\n%s",
                              worker_id, proc.pid, proc.returncode, time.monotonic() - started, cpu,
                              _tail(log_path))

        def StopWorker(self, request, context):
            with self._lock:
                proc = self._workers.get(request.worker_id)
            if proc is not None and proc.poll() is None:
                proc.terminate()
            return beam_fn_api_pb2.StopWorkerResponse()

        def stop_all(self):
            with self._lock:
                procs = list(self._workers.values())
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()

    return Servicer()


def serve(port: int, max_workers: int, log_dir: str, worker_command: Optional[List[str]] = None) -> None:
    """Runs the pool until SIGTERM or SIGINT; prints READY_LINE + address once it listens."""
    import grpc
    from concurrent import futures

    from apache_beam.portability.api import beam_fn_api_pb2_grpc

    if port:  # checked first: gRPC would log a C-level error line before raising
        import socket

        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                raise OSError(f"port {port} is in use") from None
    os.makedirs(log_dir, exist_ok=True)
    servicer = make_servicer(max_workers, log_dir, worker_command)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers + 4))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"[::]:{port}")
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if not bound:
        raise OSError(f"port {port} is in use")
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    from pipeline import beam_portable

    address = f"localhost:{bound}"
    print(f"{READY_LINE}{address} ({max_workers} workers, logs in {log_dir})", flush=True)
    print("Run the pipeline's Beam stages here with:\n  fer-pipeline run ... "
          + " ".join(f"--beam-arg={a}" for a in beam_portable.portable_beam_args(address, max_workers)),
          file=sys.stderr, flush=True)
    stop.wait()
    servicer.stop_all()
    server.stop(grace=2).wait()


class LocalWorkerPool:
    """A pool in a child process, for one run (tests, benchmarks): `with LocalWorkerPool(2) as
    pool: ... pool.beam_args ...`. The pool's own log is `pool.log_path`."""

    def __init__(self, workers: int, port: int = 0, log_dir: Optional[str] = None,
                 worker_command: Optional[List[str]] = None, ready_timeout_s: float = 60.0):
        self.workers = workers
        self.port = port
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="beam-workers-")
        self.worker_command = worker_command
        self.ready_timeout_s = ready_timeout_s
        self.log_path = os.path.join(self.log_dir, "pool.log")
        self.address = ""
        self._proc: Optional[subprocess.Popen] = None

    @property
    def beam_args(self) -> List[str]:
        from pipeline import beam_portable

        return beam_portable.portable_beam_args(self.address, self.workers)

    def __enter__(self) -> "LocalWorkerPool":
        os.makedirs(self.log_dir, exist_ok=True)
        command = [sys.executable, "-m", "pipeline.beam_worker_pool", "--port", str(self.port),
                   "--workers", str(self.workers), "--log-dir", self.log_dir]
        for part in self.worker_command or []:
            command.append(f"--worker-command={part}")
        self._log = open(self.log_path, "w")
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                      env=worker_environment(), cwd=REPO_ROOT)
        ready = threading.Event()
        lines: List[str] = []

        def read():
            for line in self._proc.stdout:
                lines.append(line)
                if line.startswith(READY_LINE):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(self.ready_timeout_s):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the Beam worker pool did not start within {self.ready_timeout_s:.0f} s: "
                               f"{_tail(self.log_path)}")
        self.address = lines[-1][len(READY_LINE):].split()[0]
        return self

    def __exit__(self, *exc) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=50000, help="gRPC port (0: any free one) (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="most worker processes alive at once (default: the CPU count, %(default)s)")
    p.add_argument("--log-dir", default=os.path.join(tempfile.gettempdir(), "fer-beam-workers"),
                   help="where each worker's log goes (default: %(default)s)")
    p.add_argument("--worker-command", action="append", help=argparse.SUPPRESS)


def run_from_args(args: argparse.Namespace) -> int:
    # Importing Beam makes google-api warn that Python 3.10 is old, once per library.
    warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port}: must lie in 0-65535", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers {args.workers}: must be at least 1", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _LOGGER.addHandler(handler)  # the pool's own lines; Beam's INFO chatter stays out
    _LOGGER.setLevel(logging.INFO)
    try:
        serve(args.port, args.workers, args.log_dir, args.worker_command)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="beam-workers", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
