"""The console's stage lines for a local run: one when a stage starts, one when it finishes
with its time and headline result (pipeline/run_report.py), read from MLMD while the run goes.

LocalDagRunner records each stage's execution in MLMD as it starts (RUNNING), and updates it
when it finishes (COMPLETE, or CACHED when it reused earlier outputs; FAILED). A thread reads
the executions newer than the run's start every POLL_S and turns the changes into lines; a
stage's time is its execution's own (last update minus creation), so the polling delay does
not enter it. Nothing of TFX's is patched: MLMD is the runner's published record, read through
pipeline/run_reader.py.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Dict, Optional

from core.progress import format_duration
from pipeline import run_reader

POLL_S = 0.5
HEARTBEAT_S = 30.0  # a running stage says so at least this often


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
        if self._store is None and os.path.exists(self.metadata_path):  # the runner creates it at its start
            self._store = run_reader.open_store(self.metadata_path)
        return self._store

    def __enter__(self) -> "StageReporter":
        store = self._open()
        if store is not None:  # a re-run in the same directory: only this run's executions count
            self._baseline = run_reader.last_execution_id(store)
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

    def _poll(self) -> None:
        try:
            store = self._open()
            if store is None:
                return
            for execution in run_reader.executions_after(store, self._baseline):
                if execution.id in self._finished:
                    continue
                if execution.id not in self._started:
                    node_id = run_reader.node_of(store, self.pipeline_name, execution.id)
                    if node_id is None:
                        continue
                    self._started[execution.id] = node_id
                    self._began[execution.id] = self._last_line[execution.id] = time.monotonic()
                    print(f"==> {node_id} ...", file=self.stream, flush=True)
                if run_reader.is_finished(execution):
                    self._finish(store, execution)
                elif run_reader.is_failed(execution):
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
        cached, seconds = run_reader.is_cached(execution), run_reader.seconds(execution)
        try:
            found = run_reader.node_outputs(store, self.pipeline_name, node_id)
            _, outputs = found if found else (None, {})
            held_out = run_report.FOLDER_HELD_OUT if "FerImageGen" in self._started.values() else run_report.CSV_HELD_OUT
            text, details = run_report.headline(node_id, outputs, held_out), run_report.details(node_id, outputs)
        except Exception as e:  # a report must never fail the run it reports on
            text, details = f"(no summary: {type(e).__name__}: {e})", {}
        self._finished.add(execution.id)
        self.results[node_id] = StageResult(node_id, seconds, cached, text, details)
        tag = "cached" if cached else f"{seconds:.1f}s"
        print(f"<== {node_id} [{tag}] {text}", file=self.stream, flush=True)
