"""FerPusher: TFX's Pusher, except that a model already being served is not copied again.

Re-running the pipeline on unchanged inputs reuses the Trainer's cached model, but the
Evaluator runs again (its baseline input changed: the first run's model is now the latest
blessed one) and blesses the same model, so the stock Pusher would copy it under a new
version number and TF Serving would reload an identical model. This executor looks for a
version in the destination with byte-identical files first and, when there is one, records
that version as the push.
"""

import hashlib
import os
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
        super().Do(input_dict, output_dict, exec_properties)


class FerPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
