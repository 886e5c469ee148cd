"""The versions under a TF Serving model base path, loaded and swapped the way TF Serving's
default "latest" version policy does: the newest version is served; a newly pushed version is
loaded in the background and replaces it once it is ready; requests already running keep
the version they started with."""

import logging
import os
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

log = logging.getLogger("fer.serving")


class NotFound(LookupError):
    """Unknown model or version (gRPC NOT_FOUND, HTTP 404)."""


@dataclass(frozen=True)
class LoadedVersion:
    version: int
    path: str
    loaded: object  # the tf.saved_model.load() result: keeps the signatures' variables alive
    signatures: Dict[str, object]  # signature key -> concrete function
    signature_defs: Dict[str, object]  # signature key -> SignatureDef proto (as in saved_model.pb)


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


class ModelStore:
    def __init__(self, model_name: str, base_path: str, poll_seconds: float = 1.0, batcher=None):
        self.model_name = model_name
        self.batcher = batcher  # serving.batching.Batcher for Predict, or None
        self.base_path = os.path.abspath(base_path)
        self.poll_seconds = poll_seconds
        self._current: Optional[LoadedVersion] = None
        self._failed: Dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.refresh()
        if self._current is None:
            raise FileNotFoundError(f"no servable version under {self.base_path} "
                                    "(expected <base>/<version>/saved_model.pb)")
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
            except Exception:  # a half-copied version: retried at the next poll, like TF Serving
                log.exception("version poll failed")

    def refresh(self) -> Optional[int]:
        """Loads the newest version when it is newer than the served one; returns it."""
        versions = list_versions(self.base_path)
        if not versions or (self._current and versions[-1] <= self._current.version):
            return None
        newest = versions[-1]
        try:
            loaded = load_version(self.base_path, newest)
        except Exception as e:
            if self._failed.get(newest) != str(e):
                log.warning("version %d of %s did not load (will retry): %s", newest, self.model_name, e)
            self._failed[newest] = str(e)
            return None
        self._failed.pop(newest, None)
        previous = self._current
        self._current = loaded  # one reference assignment: requests see the old or the new version
        log.info("serving %s version %d%s", self.model_name, newest,
                 f" (was {previous.version})" if previous else "")
        return newest

    # -- lookups ----------------------------------------------------------------------------
    def get(self, model_name: str, version: Optional[int] = None) -> LoadedVersion:
        if model_name != self.model_name:
            raise NotFound(f"Servable not found for request: Latest({model_name})"
                           if version is None else f"Servable not found for request: Specific({model_name}, {version})")
        current = self._current
        if current is None or (version is not None and version != current.version):
            raise NotFound(f"Servable not found for request: Specific({model_name}, {version})")
        return current

    def statuses(self, model_name: str, version: Optional[int] = None):
        """[(version, state)] as TF Serving reports them: the served version AVAILABLE, older
        versions on disk END (unloaded by the latest-version policy)."""
        current = self.get(model_name)
        found = [(v, "AVAILABLE" if v == current.version else "END")
                 for v in list_versions(self.base_path) if v <= current.version]
        if version is not None:
            found = [(v, s) for v, s in found if v == version]
            if not found:
                raise NotFound(f"Could not find version {version} of model {model_name}")
        return sorted(found, reverse=True)
