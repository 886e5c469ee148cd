"""The versions under a TF Serving model base path, loaded and swapped the way TF Serving's
"latest" version policy (num_versions 1) does: the newest version is served; a newly pushed
version is loaded in the background and replaces it once it is ready; requests already
running keep the version they started with. A base path that is empty or missing is waited
on, as TF Serving does. Status reports what this server has tried, as TF Serving's
ServableStateMonitor does: the served version AVAILABLE, a replaced one END, and one that
failed to load END with its error."""

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2

log = logging.getLogger("fer.serving")

# TF Serving's load retries (--max_num_load_retries, --load_retry_interval_micros defaults).
MAX_LOAD_RETRIES = 5
LOAD_RETRY_INTERVAL_S = 60.0


class StoreError(LookupError):
    """A lookup TF Serving refuses: code is the grpc.StatusCode name it answers with."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LoadedVersion:
    version: int
    path: str
    loaded: object  # the tf.saved_model.load() result: keeps the signatures' variables alive
    signatures: Dict[str, object]  # signature key -> concrete function
    signature_defs: Dict[str, object]  # signature key -> SignatureDef proto (as in saved_model.pb)


@dataclass(frozen=True)
class VersionState:
    state: str  # ModelVersionStatus.State name
    error_code: str = "OK"  # tensorflow.error.Code name
    error_message: str = ""


@dataclass
class _Failure:
    state: VersionState
    attempts: int
    last_attempt: float
    stamp: float  # saved_model.pb's mtime at the attempt: a re-copied version is tried again at once


def list_versions(base_path: str) -> List[int]:
    """Numeric sub-directories holding a saved_model.pb, oldest first."""
    if not os.path.isdir(base_path):
        return []
    return sorted(int(name) for name in os.listdir(base_path)
                  if name.isdigit() and os.path.exists(os.path.join(base_path, name, "saved_model.pb")))


def load_version(base_path: str, version: int) -> LoadedVersion:
    path = os.path.join(base_path, str(version))
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    loaded = tf.saved_model.load(path)
    signatures = dict(loaded.signatures)
    return LoadedVersion(version, path, loaded, signatures, dict(saved_model.meta_graphs[0].signature_def))


def _error_code(error: Exception) -> str:
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code)
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND"
    return "UNKNOWN"


class ModelStore:
    def __init__(self, model_name: str, base_path: str, poll_seconds: float = 1.0,
                 version_labels: Optional[Dict[str, int]] = None, retry_interval_s: float = LOAD_RETRY_INTERVAL_S):
        self.model_name = model_name
        self.base_path = os.path.abspath(base_path)
        self.poll_seconds = poll_seconds
        self.version_labels = dict(version_labels or {})
        self.retry_interval_s = retry_interval_s
        self._current: Optional[LoadedVersion] = None
        self._states: Dict[int, VersionState] = {}
        self._failures: Dict[int, _Failure] = {}
        self._lock = threading.Lock()  # one refresh at a time (the poller and an explicit call)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._warned_empty = ""  # "missing" or "empty": the state of the base path last warned about
        self.on_load = None  # called as on_load(store, version_path, ok) after each load attempt (metrics)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Loads the newest version if there is one, then polls for new ones (also when there
        is none yet: the server starts and answers NOT_FOUND until the first one lands)."""
        self.refresh()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # an unreadable base path: logged, retried at the next poll
                log.exception("version poll failed")

    def current(self) -> Optional[LoadedVersion]:
        return self._current

    def refresh(self) -> Optional[int]:
        """Loads the newest version when it is newer than the served one; returns it."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> Optional[int]:
        versions = list_versions(self.base_path)
        if not versions:
            # Once per state (missing, then empty): TF Serving's words (file_system_storage_path_source.cc),
            # and for a path that does not exist, that, in place of its leaf-directory guess.
            missing = not os.path.exists(self.base_path)
            if self._warned_empty != ("missing" if missing else "empty"):
                if missing:
                    log.warning("No versions of servable %s found under base path %s: the path does not exist; "
                                "waiting for it", self.model_name, self.base_path)
                else:
                    log.warning("No versions of servable %s found under base path %s. Did you forget to name your "
                                "leaf directory as a number (eg. '/1/')?", self.model_name, self.base_path)
                self._warned_empty = "missing" if missing else "empty"
            return None
        self._warned_empty = ""
        newest = versions[-1]
        if self._current and newest <= self._current.version:
            return None
        if not self._should_try(newest):
            return None
        self._states[newest] = VersionState("LOADING")
        try:
            loaded = load_version(self.base_path, newest)
        except Exception as e:
            failure = self._failures.get(newest)
            attempts = failure.attempts + 1 if failure else 1
            state = VersionState("END", _error_code(e), f"{type(e).__name__}: {e}".strip())
            self._states[newest] = state
            self._failures[newest] = _Failure(state, attempts, time.monotonic(), self._stamp(newest))
            log.warning("Loading servable: {name: %s version: %d} failed (attempt %d of %d): %s", self.model_name,
                        newest, attempts, MAX_LOAD_RETRIES + 1, state.error_message)
            self._loaded(newest, False)
            return None
        self._failures.pop(newest, None)
        previous = self._current
        self._current = loaded  # one reference assignment: requests see the old or the new version
        self._states[newest] = VersionState("AVAILABLE")
        if previous is not None:
            self._states[previous.version] = VersionState("END")
        log.info("Successfully loaded servable version {name: %s version: %d}%s", self.model_name, newest,
                 f" (unloading version {previous.version})" if previous else "")
        self._loaded(newest, True)
        return newest

    def _stamp(self, version: int) -> float:
        try:
            return os.path.getmtime(os.path.join(self.base_path, str(version), "saved_model.pb"))
        except OSError:
            return 0.0

    def _should_try(self, version: int) -> bool:
        failure = self._failures.get(version)
        if failure is None or self._stamp(version) != failure.stamp:
            return True
        return (failure.attempts <= MAX_LOAD_RETRIES
                and time.monotonic() - failure.last_attempt >= self.retry_interval_s)

    def _loaded(self, version: int, ok: bool) -> None:
        if self.on_load is not None:
            self.on_load(self, os.path.join(self.base_path, str(version)), ok)

    # -- lookups ----------------------------------------------------------------------------
    def get(self, model_name: str, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        if label is not None:
            if version is not None:  # the REST paths cannot say both; a gRPC ModelSpec's oneof cannot either
                raise StoreError("INVALID_ARGUMENT", f"Both model version ({version}) and model version label "
                                                     f"({label}) cannot be supplied.")
            if model_name != self.model_name or label not in self.version_labels:
                raise StoreError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
            version = self.version_labels[label]
        request = f"Latest({model_name})" if version is None else f"Specific({model_name}, {version})"
        current = self._current
        if model_name != self.model_name or current is None or (version is not None and version != current.version):
            raise StoreError("NOT_FOUND", f"Servable not found for request: {request}")
        return current

    def states(self) -> List[Tuple[int, VersionState]]:
        """Every version this server has tried, newest first."""
        return sorted(self._states.items(), reverse=True)

    def statuses(self, model_name: str, version: Optional[int] = None) -> List[Tuple[int, VersionState]]:
        """[(version, state)], newest first, as TF Serving's GetModelStatus reports them."""
        states = dict(self._states) if model_name == self.model_name else {}
        if version is not None:
            if version not in states:
                raise StoreError("NOT_FOUND", f"Could not find version {version} of model {model_name}")
            return [(version, states[version])]
        if not states:
            raise StoreError("NOT_FOUND", f"Could not find any versions of model {model_name}")
        return sorted(states.items(), reverse=True)
