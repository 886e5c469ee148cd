"""The console's stage lines for a local run: one when a stage starts, one when it finishes
with its time and headline result (pipeline/run_report.py), read from MLMD while the run goes.

LocalDagRunner records each stage's execution in MLMD as it starts (RUNNING), and updates it
when it finishes (COMPLETE, or CACHED when it reused earlier outputs; FAILED). A thread reads
the executions newer than the run's start every POLL_S and turns the changes into lines; a
stage's time is its execution's own (last update minus creation), so the polling delay does
not enter it. Nothing of TFX's is patched: MLMD is the runner's published record.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Dict, Optional

from ml_metadata.proto import metadata_store_pb2

from models.progress import format_duration

POLL_S = 0.5
HEARTBEAT_S = 30.0  # a running stage says so at least this often
_FINISHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


@dataclasses.dataclass
class StageResult:
    node_id: str
    seconds: float
    cached: bool
    headline: str
    details: dict = dataclasses.field(default_factory=dict)


class StageReporter:
    """`with StageReporter(...) as reporter: LocalDagRunner().run(...)`; then
    `reporter.results` has each finished stage's StageResult."""

    def __init__(self, pipeline_name: str, metadata_path: str, stream, heartbeat_s: float = HEARTBEAT_S):
        self.pipeline_name = pipeline_name
        self.metadata_path = metadata_path
        self.stream = stream
        self.heartbeat_s = heartbeat_s
        self.results: Dict[str, StageResult] = {}
        self._started: Dict[int, str] = {}  # execution id -> node id, once its start line is out
        self._began: Dict[int, float] = {}  # execution id -> when its start line went out (monotonic)
        self._last_line: Dict[int, float] = {}  # execution id -> when its last line went out
        self._finished: set = set()
        self._baseline = 0
        self._store = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _open(self):
        from ml_metadata.metadata_store import metadata_store

        if self._store is None and os.path.exists(self.metadata_path):
            config = metadata_store_pb2.ConnectionConfig()
            config.sqlite.filename_uri = self.metadata_path
            config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
            self._store = metadata_store.MetadataStore(config)
        return self._store

    def __enter__(self) -> "StageReporter":
        store = self._open()
        if store is not None:  # a re-run in the same directory: only this run's executions count
            self._baseline = max((e.id for e in store.get_executions()), default=0)
        self._thread = threading.Thread(target=self._watch, name="stage-reporter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._poll()  # what finished since the last look

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll()

    def _node_id(self, store, execution_id: int) -> Optional[str]:
        prefix = self.pipeline_name + "."
        for context in store.get_contexts_by_execution(execution_id):
            if context.type == "node" and context.name.startswith(prefix):
                return context.name[len(prefix):]
        return None

    def _poll(self) -> None:
        try:
            store = self._open()
            if store is None:
                return
            executions = sorted((e for e in store.get_executions() if e.id > self._baseline), key=lambda e: e.id)
            for execution in executions:
                if execution.id in self._finished:
                    continue
                if execution.id not in self._started:
                    node_id = self._node_id(store, execution.id)
                    if node_id is None:
                        continue
                    self._started[execution.id] = node_id
                    self._began[execution.id] = self._last_line[execution.id] = time.monotonic()
                    print(f"==> {node_id} ...", file=self.stream, flush=True)
                if execution.last_known_state in _FINISHED:
                    self._finish(store, execution)
                elif execution.last_known_state == metadata_store_pb2.Execution.FAILED:
                    self._finished.add(execution.id)  # the run's own error says why
                else:
                    self._heartbeat(execution.id)
        except Exception:  # the store is busy being written: the next look sees it
            pass

    def _heartbeat(self, execution_id: int) -> None:
        """A line every heartbeat_s while a stage runs: a Beam stage is otherwise silent for
        minutes between its start and end lines."""
        now = time.monotonic()
        if now - self._last_line[execution_id] >= self.heartbeat_s:
            self._last_line[execution_id] = now
            print(f"    {self._started[execution_id]} running, {format_duration(now - self._began[execution_id])}",
                  file=self.stream, flush=True)

    def _finish(self, store, execution) -> None:
        from pipeline import run_report

        node_id = self._started[execution.id]
        cached = execution.last_known_state == metadata_store_pb2.Execution.CACHED
        seconds = max(0.0, (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000)
        try:
            found = run_report.node_outputs(store, self.pipeline_name, node_id)
            _, outputs = found if found else (None, {})
            text, details = run_report.headline(node_id, outputs), run_report.details(node_id, outputs)
        except Exception as e:  # a report must never fail the run it reports on
            text, details = f"(no summary: {type(e).__name__}: {e})", {}
        self._finished.add(execution.id)
        self.results[node_id] = StageResult(node_id, seconds, cached, text, details)
        tag = "cached" if cached else f"{seconds:.1f}s"
        print(f"<== {node_id} [{tag}] {text}", file=self.stream, flush=True)
