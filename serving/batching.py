"""Server-side batching, as TF Serving's --enable_batching does it: concurrent Predict
requests for the same version and signature are queued for up to `timeout_s`, joined along
the batch dimension (up to `max_batch_size` rows), run as one call, and split back. The
queue is bounded as TF Serving's is (max_enqueued_batches × max_batch_size rows): a request
beyond it is refused at once with TF Serving's UNAVAILABLE message instead of waiting behind
an unbounded backlog. Batches run on one thread (num_batch_threads is not read)."""

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import tensorflow as tf

from serving.defaults import DEFAULT_BATCH_TIMEOUT_S, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_ENQUEUED_BATCHES


class QueueFull(Exception):
    """The batching queue holds its bound of rows (gRPC UNAVAILABLE, HTTP 503)."""


@dataclass
class _Item:
    key: tuple
    function: object
    tensors: Dict[str, np.ndarray]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Dict[str, np.ndarray] = None
    error: BaseException = None


class Batcher:
    def __init__(self, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, timeout_s: float = DEFAULT_BATCH_TIMEOUT_S,
                 max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES):
        self.max_batch_size, self.timeout_s = max_batch_size, timeout_s
        self.max_queued_rows = max_enqueued_batches * max_batch_size
        self._queued_rows = 0
        self._rows_lock = threading.Lock()
        self._queue: "queue.Queue[_Item]" = queue.Queue()
        self._held: List[_Item] = []  # taken from the queue for a different key: next round
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()
        self.batches = 0  # counters for tests and benchmarks
        self.requests = 0

    def run(self, key: tuple, function, tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        rows = len(next(iter(tensors.values())))
        with self._rows_lock:
            if self._queued_rows and self._queued_rows + rows > self.max_queued_rows:
                raise QueueFull("The batch scheduling queue to which this task was submitted is full")
            self._queued_rows += rows
        item = _Item(key, function, tensors, rows)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def _next(self, timeout=None):
        if self._held:
            return self._held.pop(0)
        return self._queue.get(timeout=timeout)

    def _loop(self) -> None:
        while True:
            first = self._next()
            batch, rows = [first], first.rows
            deadline = time.perf_counter() + self.timeout_s
            while rows < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item.key == first.key and rows + item.rows <= self.max_batch_size:
                    batch.append(item)
                    rows += item.rows
                else:
                    self._held.append(item)
            self._execute(batch)

    def _execute(self, batch: List[_Item]) -> None:
        with self._rows_lock:
            self._queued_rows -= sum(item.rows for item in batch)
        self.batches += 1
        self.requests += len(batch)
        try:
            joined = {name: tf.constant(np.concatenate([item.tensors[name] for item in batch]))
                      for name in batch[0].tensors}
            outputs = {k: v.numpy() for k, v in batch[0].function(**joined).items()}
            start = 0
            for item in batch:
                item.result = {k: v[start:start + item.rows] for k, v in outputs.items()}
                start += item.rows
        except BaseException as e:  # every waiting request learns of the failure
            for item in batch:
                item.error = e
        for item in batch:
            item.done.set()
