"""The warm start as a Model artifact: --warm-start's value resolved where the task runs (the
rules of models/warm_start.resolve, read through tf.io.gfile so gs:// and other filesystems
work) and its SavedModel copied into <artifact uri>/Format-Serving, where TFX's Trainer
(base_model) and Evaluator (baseline) read a Model. Plain functions; no TFX types."""

from __future__ import annotations

import dataclasses
import os

from models import warm_start

SERVING_SUBDIR = warm_start.MODEL_ARTIFACT_SUBDIR


class GFiles:
    """models/warm_start.resolve's filesystem, through tf.io.gfile."""

    @staticmethod
    def isfile(path: str) -> bool:
        import tensorflow as tf

        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)

    @staticmethod
    def isdir(path: str) -> bool:
        import tensorflow as tf

        return tf.io.gfile.isdir(path)

    @staticmethod
    def listdir(path: str):
        import tensorflow as tf

        return tf.io.gfile.listdir(path)


@dataclasses.dataclass(frozen=True)
class Staged:
    source: str  # --warm-start as given: `shipped`, a path or a URI
    saved_model: str  # the SavedModel folder it resolved to
    version: str  # that folder's name: a TF Serving version, or the Model artifact's id


def version_of(saved_model: str) -> str:
    folder = saved_model.rstrip("/")
    if os.path.basename(folder) == SERVING_SUBDIR:  # a Model artifact: <uri>/Format-Serving
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def resolve(source: str, flag: str = "--warm-start") -> str:
    """The SavedModel folder `source` names (WarmStartError, one line naming it and `flag`, if none)."""
    return warm_start.resolve(source, GFiles, flag)


def copy_tree(source_dir: str, destination: str) -> None:
    """A recursive copy through tf.io.gfile; what was at `destination` (an earlier, failed try's
    files) is replaced."""
    import tensorflow as tf

    if tf.io.gfile.exists(destination):
        tf.io.gfile.rmtree(destination)
    source_dir = source_dir.rstrip("/")
    for folder, _, files in tf.io.gfile.walk(source_dir):
        target = os.path.join(destination, folder.rstrip("/")[len(source_dir):].lstrip("/"))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name), overwrite=True)


def stage(source: str, artifact_uri: str) -> Staged:
    """Resolves `source` and copies its SavedModel to <artifact_uri>/Format-Serving."""
    saved_model = resolve(source)
    copy_tree(saved_model, os.path.join(artifact_uri, SERVING_SUBDIR))
    return Staged(source, saved_model, version_of(saved_model))
