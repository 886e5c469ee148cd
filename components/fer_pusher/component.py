"""FerPusher: TFX's Pusher, except that a model already being served is not copied again,
and that a push to a local folder appears whole or not at all.

Re-running the pipeline on unchanged inputs reuses the Trainer's cached model, but the
Evaluator runs again (its baseline input changed: the first run's model is now the latest
blessed one) and blesses the same model, so the stock Pusher would copy it under a new
version number and TF Serving would reload an identical model. This executor looks for a
version in the destination with byte-identical files first and, when there is one, records
that version as the push.

The stock Pusher copies into <base>/<version> file by file (saved_model.pb last). A run killed
during that copy leaves a version folder that is partly written, and one whose saved_model.pb
is cut short is one TF Serving tries to load; the resumed run then pushes under a new version
beside it. To a local folder (a path or file://) this executor copies into a hidden staging
folder beside the versions (`.pushing-<version>-<random>`: TF Serving and `fer-pipeline serve`
look at numeric names only), holding an flock on its `.lock` file, and renames it to
<base>/<version>, which is atomic on one filesystem; the copy is flushed to disk (fsync) before
the rename, so not even a power cut leaves a version folder whose files were never written.
The kernel releases a killed push's lock, so the next push removes every staging folder (and
lone lock file) whose lock is free, whichever host or container left it (on a shared volume, as
far as its filesystem shares flocks; every pusher on one volume should run this code, whose
pushes re-check their lock file after locking it). A version number another model took
meanwhile moves this push to the next free one; one the same model took is reused. Other
filesystems (gs://, ...) get TFX's copy.
"""

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import time
import urllib.parse
import uuid
from typing import Any, Dict, Iterator, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from core import names

REUSED_VERSION_PROPERTY = names.REUSED_VERSION_PROPERTY


def _fingerprint(directory: str) -> Dict[str, str]:
    """relative path -> sha256 of every file under directory."""
    result = {}
    for root, _, files in fileio.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            digest = hashlib.sha256()
            with fileio.open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            result[os.path.relpath(path, directory)] = digest.hexdigest()
    return result


def find_identical_version(model_dir: str, base_directory: str) -> Optional[str]:
    """The newest version directory under base_directory whose files equal model_dir's."""
    if not fileio.exists(base_directory):
        return None
    versions = sorted((v for v in fileio.listdir(base_directory) if v.rstrip("/").isdigit()),
                      key=lambda v: int(v.rstrip("/")), reverse=True)
    if not versions:
        return None
    wanted = _fingerprint(model_dir)
    for version in versions:
        candidate = os.path.join(base_directory, version.rstrip("/"))
        if _fingerprint(candidate) == wanted:
            return candidate
    return None


STAGING_PREFIX = ".pushing-"
LOCK_SUFFIX = ".lock"


def _open_lock(lock_path: str, create: bool) -> int:
    if create:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return os.open(lock_path, os.O_RDWR)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        return os.open(lock_path, os.O_RDONLY)


@contextlib.contextmanager
def _locked(lock_path: str, wait: bool = True, create: bool = True) -> Iterator[Optional[bool]]:
    """An exclusive flock on lock_path for the with-block: True when held; False when another
    process holds it (only without `wait`); None when there is no such file and `create` is
    off (then nobody holds it: a holder's file stays until the holder removes it). The kernel
    releases a lock when its process dies, SIGKILL included, so a held lock is a push still
    running, on this host or, on a filesystem that shares locks, another. A cleaner that removed
    the file between this open and this lock leaves a lock on nothing: then the file is opened
    again. Without `create` a file this user may not write is opened read-only, enough for a
    local flock (NFS emulates flock with POSIX locks, which need a writable descriptor)."""
    while True:
        try:
            fd = _open_lock(lock_path, create)
        except FileNotFoundError:
            if create:
                raise
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                opened, named = os.fstat(fd), os.stat(lock_path)
                current = (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)


def remove_unfinished_pushes(base_directory: str) -> List[str]:
    """Removes the staging folders and lock files of pushes that were killed: those whose lock
    no process holds. A running push's stay; one that cannot be tested (no permission, no lock
    support) is logged and left. Returns the removed staging folders."""
    removed = []
    names = sorted(os.listdir(base_directory)) if os.path.isdir(base_directory) else []
    for name in names:
        if not name.startswith(STAGING_PREFIX):
            continue
        staging = os.path.join(base_directory, name[:-len(LOCK_SUFFIX)] if name.endswith(LOCK_SUFFIX) else name)
        if name.endswith(LOCK_SUFFIX) and os.path.isdir(staging):
            continue  # with its folder
        try:
            with _locked(staging + LOCK_SUFFIX, wait=False, create=False) as held:
                if held is False:
                    continue  # a push still running
                if os.path.isdir(staging):
                    shutil.rmtree(staging)
                    removed.append(staging)
                if held:  # removed while held: a push that opened it meanwhile opens it again
                    os.remove(staging + LOCK_SUFFIX)
        except OSError as e:
            logging.warning("Left %s: could not tell whether a push is still writing it (%s).", staging, e)
    return removed


# What some filesystems (FUSE, CIFS) answer to an fsync of a directory: nothing to flush there.
_NO_DIRECTORY_FSYNC = (errno.EINVAL, errno.ENOTSUP, errno.ENOSYS, errno.EBADF)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if not (os.path.isdir(path) and e.errno in _NO_DIRECTORY_FSYNC):
            raise
    finally:
        os.close(fd)


def _flush_to_disk(directory: str) -> None:
    """fsync every file and folder under directory, and directory itself."""
    for root, _, files in os.walk(directory, topdown=False):
        for name in files:
            _fsync(os.path.join(root, name))
        _fsync(root)


def push_atomically(model_path: str, base_directory: str, version: str) -> Optional[str]:
    """Copies model_path to <base_directory>/<version> through a staging folder, held under its
    lock, flushed to disk, and a rename; None when that version exists. A push that fails
    removes its staging folder; one that is killed leaves it to the next push's
    remove_unfinished_pushes."""
    serving_path = os.path.join(base_directory, version)
    if os.path.exists(serving_path):
        return None
    os.makedirs(base_directory, exist_ok=True)
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:12]}")
    with _locked(staging + LOCK_SUFFIX):
        try:
            io_utils.copy_dir(model_path, staging)
            _flush_to_disk(staging)
            os.rename(staging, serving_path)  # fails on a non-empty version folder made meanwhile
        except BaseException as e:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(e, OSError) and e.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.isdir(serving_path):
                return None
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(staging + LOCK_SUFFIX)
    _fsync(base_directory)  # the rename itself
    return serving_path


def local_path(path: str) -> Optional[str]:
    """The local filesystem path a destination names (a plain path, or file:// with no host or
    localhost), or None (gs://, a file:// URI naming another host, ...)."""
    if path.startswith("file://"):
        parts = urllib.parse.urlsplit(path)
        local = parts.netloc in ("", "localhost") and not (parts.query or parts.fragment)
        return urllib.parse.unquote(parts.path) if local else None
    return None if "://" in path else path


class Executor(pusher_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") == "filesystem" and self.CheckBlessing(input_dict):
            model_path = self.GetModelPath(input_dict)
            local = local_path(destination.filesystem.base_directory)
            for path in remove_unfinished_pushes(local) if local else ():
                logging.info("Removed %s, left by a push that was killed.", path)
            existing = find_identical_version(model_path, local or destination.filesystem.base_directory)
            if existing:
                model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                io_utils.copy_dir(model_path, model_push.uri)
                self._MarkPushed(model_push, pushed_destination=existing, pushed_version=os.path.basename(existing))
                model_push.set_int_custom_property(REUSED_VERSION_PROPERTY, 1)
                logging.info("Model already served as %s; not copied again.", existing)
                return
            if local and destination.filesystem.versioning in (pusher_pb2.Versioning.AUTO,
                                                               pusher_pb2.Versioning.UNIX_TIMESTAMP):
                self._push_locally(model_path, local, output_dict)
                return
        super().Do(input_dict, output_dict, exec_properties)

    def _push_locally(self, model_path: str, base_directory: str, output_dict) -> None:
        """The stock Pusher's push (a Unix-time version; the archive copy in the artifact), with
        the copy to the destination made atomic."""
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        version, wanted = int(time.time()), None
        # A version folder that exists: the same model, pushed meanwhile by another run, is
        # reused; another model moves this push to the next free number, so that it is served
        # rather than recorded and dropped.
        while (serving_path := push_atomically(model_path, base_directory, str(version))) is None:
            taken = os.path.join(base_directory, str(version))
            wanted = wanted or _fingerprint(model_path)
            if _fingerprint(taken) == wanted:
                serving_path = taken
                logging.info("Model pushed meanwhile as %s; not copied again.", taken)
                break
            logging.info("Version %d exists in %s (another model); trying %d.", version, base_directory, version + 1)
            version += 1
        else:
            logging.info("Model written to serving path %s.", serving_path)
        version = str(version)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s.", model_push.uri)


class FerPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
