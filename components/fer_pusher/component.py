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
beside it. To a local folder this executor copies into a hidden staging folder beside the
versions (`.pushing-<version>-<host>-<pid>`: TF Serving and `fer-pipeline serve` look at numeric
names only) and renames it to <base>/<version>, which is atomic on one filesystem; the next
push removes what a killed push of this host left there. Other filesystems (gs://, ...) get
TFX's copy.
"""

import hashlib
import os
import re
import socket
import time
from typing import Any, Dict, List, Optional

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


def _staging_name(version: str) -> str:
    return f"{STAGING_PREFIX}{version}-{socket.gethostname()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_unfinished_pushes(base_directory: str) -> List[str]:
    """Removes the staging folders that pushes of this host left when they were killed (their
    process is gone); another host's, and a running push's, stay. Returns the removed paths."""
    pattern = re.compile(re.escape(STAGING_PREFIX) + r"\d+-(?P<host>.+)-(?P<pid>\d+)$")
    removed = []
    for name in os.listdir(base_directory) if os.path.isdir(base_directory) else ():
        match = pattern.match(name)
        if match and match["host"] == socket.gethostname() and not _alive(int(match["pid"])):
            path = os.path.join(base_directory, name)
            fileio.rmtree(path)
            removed.append(path)
    return removed


def push_atomically(model_path: str, base_directory: str, version: str) -> Optional[str]:
    """Copies model_path to <base_directory>/<version> through a staging folder and a rename;
    None when that version exists already (the stock Pusher skips such a push too)."""
    serving_path = os.path.join(base_directory, version)
    if os.path.exists(serving_path):
        return None
    os.makedirs(base_directory, exist_ok=True)
    for path in remove_unfinished_pushes(base_directory):
        logging.info("Removed %s, left by a push that was killed.", path)
    staging = os.path.join(base_directory, _staging_name(version))
    io_utils.copy_dir(model_path, staging)
    os.rename(staging, serving_path)
    return serving_path


def _is_local(path: str) -> bool:
    return "://" not in path


class Executor(pusher_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") == "filesystem" and self.CheckBlessing(input_dict):
            model_path = self.GetModelPath(input_dict)
            existing = find_identical_version(model_path, destination.filesystem.base_directory)
            if existing:
                model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                io_utils.copy_dir(model_path, model_push.uri)
                self._MarkPushed(model_push, pushed_destination=existing, pushed_version=os.path.basename(existing))
                model_push.set_int_custom_property(REUSED_VERSION_PROPERTY, 1)
                logging.info("Model already served as %s; not copied again.", existing)
                return
            versioning = destination.filesystem.versioning
            if _is_local(destination.filesystem.base_directory) and versioning in (
                    pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
                self._push_locally(model_path, destination.filesystem.base_directory, output_dict)
                return
        super().Do(input_dict, output_dict, exec_properties)

    def _push_locally(self, model_path: str, base_directory: str, output_dict) -> None:
        """The stock Pusher's push (a Unix-time version; the archive copy in the artifact), with
        the copy to the destination made atomic."""
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        version = str(int(time.time()))
        serving_path = push_atomically(model_path, base_directory, version)
        if serving_path is None:
            serving_path = os.path.join(base_directory, version)
            logging.info("Destination directory %s already exists, skipping current push.", serving_path)
        else:
            logging.info("Model written to serving path %s.", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s.", model_push.uri)


class FerPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
