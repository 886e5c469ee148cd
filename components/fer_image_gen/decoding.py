"""Decoding batches of image files in worker processes. No TensorFlow.

Why processes: the ingest's per-file Python (header checks, hashes, the tf.Example encoding,
the TFRecord framing, the bookkeeping) holds the GIL, so a second decoding thread gained nothing
(bench/results/folder_ingest.md: 1 and 2 threads measured the same). A worker process runs
`decode_batch` (read, check, decode, convert, hash and encode a batch of files) with its own
interpreter, and the reading process keeps only the walk, the order and the writing.

How they start: `python -c` importing this module, never a fork (the reader runs inside a
process with TensorFlow, Beam and threads running), and not multiprocessing's spawn either:
spawn re-imports the parent's __main__ in every worker, and in a Kubeflow container that is
TFX's executor entry point (TensorFlow and TFX: seconds and hundreds of MB a worker). A worker
imports numpy, OpenCV, images.py and what unpickling a request names (the encoder,
components/fer_example_gen/encoding.py): ~0.12 s of CPU and ~56 MB of RSS
(bench/results/folder_ingest.md).

Protocol, over the worker's stdin and stdout (its own prints and C libraries' go to stderr):
"R" once it has imported, then for each request (8-byte length, pickle of decode_batch's
arguments) one answer (8-byte length, pickle of ("ok", pack(...)) or ("error", one line)), in
request order. A worker ignores SIGINT (the reader shuts it down) and exits at the end of its
stdin: closed by WorkerPool.close, or by the system when the reading process dies.
"""

from __future__ import annotations

import collections
import fcntl
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from components.fer_image_gen.images import Loaded, load
from core import features

_LENGTH = struct.Struct("<Q")
_PIPE_BYTES = 1 << 20
_READY = b"R"
_START_TIMEOUT_S = 120.0  # a worker imports in ~0.1 s; one that has not after this is stuck
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds components/
# sys.path[0] is the working folder for `python -c`: the project this module came from, instead.
# The answers' pipe is taken off fd 1 before any import, so nothing an import prints to stdout
# can reach the reading process (it would break the protocol); fd 1 then points to stderr.
_WORKER_CODE = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); answers = os.dup(1); "
                "os.dup2(2, 1); sys.path[0] = {root!r}; "
                "from components.fer_image_gen import decoding; decoding.serve(answers)")

Encoder = Callable[[List[int], np.ndarray], List[bytes]]  # (labels, pixels [N, NUM_PIXELS]) -> records


def decode_batch(paths: Sequence[str], labels: Sequence[int], max_pixels: int, max_bytes: int,
                 encode: Optional[Encoder] = None, detector=None) -> List[Loaded]:
    """images.load of each path, and `encode` of the good ones (Loaded.record)."""
    loaded = [load(path, max_pixels=max_pixels, max_bytes=max_bytes, detector=detector) for path in paths]
    if encode is not None:
        good = [(label, done) for label, done in zip(labels, loaded) if done.pixels is not None]
        if good:
            records = encode([label for label, _ in good], np.stack([done.pixels for _, done in good]))
            for (_, done), record in zip(good, records):
                done.record = record
    return loaded


Packed = Tuple[np.ndarray, Optional[list], list, list, list, list]


def pack(loaded: List[Loaded]) -> Packed:
    """decode_batch's answer as one array and lists of plain values, for pickle: not one object
    and one small array a file."""
    good = [done for done in loaded if done.pixels is not None]
    pixels = (np.stack([done.pixels for done in good]) if good
              else np.zeros((0, features.NUM_PIXELS), np.uint8))
    records = [done.record for done in good] if good and good[0].record is not None else None
    return (pixels, records, [d.content_hash for d in loaded], [d.face_hash for d in loaded],
            [d.reason for d in loaded], [d.detail for d in loaded])


def unpack(packed: Packed) -> List[Loaded]:
    pixels, records, content_hashes, face_hashes, reasons, details = packed
    loaded, g = [], 0
    for content_hash, face_hash, reason, detail in zip(content_hashes, face_hashes, reasons, details):
        if reason:
            loaded.append(Loaded(None, content_hash, face_hash, None, reason, detail))
        else:
            loaded.append(Loaded(pixels[g], content_hash, face_hash, records[g] if records is not None else None))
            g += 1
    return loaded


def serve(answers_fd: int) -> None:
    """A worker's main loop (see the module's doc), answering on `answers_fd`."""
    answers = os.fdopen(answers_fd, "wb")
    requests = os.fdopen(os.dup(0), "rb")
    todo: "queue.Queue" = queue.Queue()

    def read_requests():  # always draining stdin: the reading process never blocks writing to it
        try:
            while True:
                head = requests.read(_LENGTH.size)
                if len(head) < _LENGTH.size:
                    break
                todo.put(requests.read(_LENGTH.unpack(head)[0]))
        finally:
            todo.put(None)

    threading.Thread(target=read_requests, daemon=True).start()
    try:
        answers.write(_READY)
        answers.flush()
        while True:
            request = todo.get()
            if request is None:
                os._exit(0)  # every answer is flushed; a normal exit unloads numpy and OpenCV first (~30 ms)
            try:
                answer = ("ok", pack(decode_batch(*pickle.loads(request))))
            except Exception as e:  # one line for the reading process to raise
                answer = ("error", f"{type(e).__name__}: {e}")
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            answers.write(_LENGTH.pack(len(data)) + data)
            answers.flush()
    except (BrokenPipeError, ConnectionResetError):  # the reading process has gone
        os._exit(0)  # at once: a normal exit would flush the broken pipe again and print about it


class _Worker:
    """One worker process, and a thread here that reads its answers as they come: a worker
    never waits for the reader to take an answer out of the pipe (it did with the pipe alone,
    ~40 % of its time: an answer is ~300 KB, the pipe holds 64 KB)."""

    def __init__(self, index: int):
        self.index = index
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER_CODE.format(root=_ROOT)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            self._attach(index)
        except BaseException:  # not yet in the pool, so its close() would not end this one
            self.process.kill()
            self.process.wait()
            raise

    def _attach(self, index: int) -> None:
        try:  # an answer (~300 KB) in one read: each read takes the GIL back from the ingest's own Python
            fcntl.fcntl(self.process.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
        except OSError:  # not Linux, or above /proc/sys/fs/pipe-max-size: 64 KiB reads work too
            pass
        self.pending: collections.deque = collections.deque()  # jobs sent, oldest first
        self.answers: "queue.Queue" = queue.Queue()  # _READY, then answers; None: the worker has ended
        self.reader = threading.Thread(target=self._read_answers, name=f"fer-image-worker-{index}", daemon=True)
        self.reader.start()

    def _read_answers(self) -> None:
        stream = self.process.stdout
        try:
            if stream.read(1) != _READY:
                return
            self.answers.put(_READY)
            while True:
                head = stream.read(_LENGTH.size)
                if len(head) < _LENGTH.size:
                    return
                size = _LENGTH.unpack(head)[0]
                data = stream.read(size)
                if len(data) < size:
                    return
                self.answers.put(data)
        except (OSError, ValueError):  # the pipe is broken
            return
        finally:
            self.answers.put(None)

    def reap(self, timeout: float = 10.0) -> None:
        """Waits for a worker whose answers have ended (it is exiting), for its exit code."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def failure(self, what: str) -> "WorkerError":
        code = self.process.poll()
        state = "still running" if code is None else f"exit code {code}"
        return WorkerError(f"decoding worker {self.index} (pid {self.process.pid}, {state}): {what}")


class WorkerError(RuntimeError):
    """A worker process failed (it died, or decode_batch raised): one line."""


class Job:
    """One batch sent to a worker; result() waits for its answer (a concurrent Future's call)."""

    def __init__(self, pool: "WorkerPool", worker: _Worker):
        self._pool, self._worker = pool, worker
        self._result: Optional[List[Loaded]] = None
        self._error: Optional[str] = None
        self.done = False

    def result(self) -> List[Loaded]:
        while not self.done:
            self._pool._receive(self._worker)
        if self._error is not None:
            raise self._worker.failure(self._error)
        return self._result


class WorkerPool:
    """`n` worker processes running decode_batch. Jobs go to the worker with the fewest
    pending; each worker answers in request order. close() ends them all (also on an
    exception or an early close of the reader), leaving no process behind."""

    def __init__(self, n: int):
        """Starts the workers and waits until each has imported what it needs; raises
        WorkerError (one line; the worker's own error is on stderr) for one that ended instead."""
        self.workers: List[_Worker] = []
        try:
            for i in range(n):
                self.workers.append(_Worker(i))
            for worker in self.workers:
                try:
                    started = worker.answers.get(timeout=_START_TIMEOUT_S)
                except queue.Empty:
                    raise worker.failure(f"did not start within {_START_TIMEOUT_S:.0f} s") from None
                if started is not _READY:
                    worker.reap()
                    raise worker.failure("ended before it started (its error is above, on stderr)")
        except BaseException:
            self.close()
            raise

    def submit(self, paths: Sequence[str], labels: Sequence[int], max_pixels: int, max_bytes: int,
               encode: Optional[Encoder]) -> Job:
        worker = min(self.workers, key=lambda w: len(w.pending))
        data = pickle.dumps((list(paths), list(labels), max_pixels, max_bytes, encode),
                            protocol=pickle.HIGHEST_PROTOCOL)
        try:
            worker.process.stdin.write(_LENGTH.pack(len(data)) + data)
            worker.process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError):
            worker.reap()
            raise worker.failure("ended while taking a batch") from None
        job = Job(self, worker)
        worker.pending.append(job)
        return job

    def _receive(self, worker: _Worker) -> None:
        data = worker.answers.get()
        if data is None:
            worker.answers.put(None)  # for the next caller too
            worker.reap()
            raise worker.failure("ended while decoding a batch")
        status, value = pickle.loads(data)
        job = worker.pending.popleft()
        if status == "ok":
            job._result = unpack(value)
        else:
            job._error = value
        job.done = True

    def close(self, timeout: float = 10.0) -> None:
        """Ends the workers: end of input (a worker answers the batches it was sent, at most
        a window's few, and exits), then a kill for one that has not exited within `timeout`
        seconds of waiting on it (up to twice `timeout` a worker, one after the other). Waits for
        each, and its reading thread."""
        for worker in self.workers:
            try:
                worker.process.stdin.close()
            except OSError:  # it had ended: the last write failed
                pass
        for worker in self.workers:
            worker.reader.join(timeout)  # its answers end when it exits (an event, where wait() polls)
            try:
                worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
                worker.reader.join()
            worker.process.stdout.close()
        self.workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
