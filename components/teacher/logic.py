"""The teacher as a Model artifact: --teacher's comma-separated SavedModels, each resolved where
the task runs (the rules of models/warm_start.resolve, through tf.io.gfile) and copied into
<artifact uri>/members/<NN>, in the order given. FerTrainer's executor lists the members for
run_fn (models/distillation.py). Plain functions; no TFX types."""

from __future__ import annotations

import os
from typing import List

from components.warm_start import logic as warm_start_logic
from models import warm_start

FLAG = "--teacher"
MEMBERS_SUBDIR = "members"


def split_sources(sources: str) -> List[str]:
    """'a, b' -> ['a', 'b'] (WarmStartError, one line, for an empty list or an empty entry)."""
    parts = [part.strip() for part in str(sources).split(",")]
    if not any(parts) or not all(parts):
        raise warm_start.WarmStartError(f"{FLAG} {sources!r}: give one or more SavedModels, separated by commas")
    return parts


def resolve(sources: str) -> List[str]:
    """The SavedModel folder of each source, in order (WarmStartError naming the first that is none)."""
    return [warm_start_logic.resolve(source, FLAG) for source in split_sources(sources)]


def stage(sources: str, artifact_uri: str) -> List[str]:
    """Resolves each source and copies it to <artifact_uri>/members/<NN>; returns the folders
    the sources resolved to."""
    resolved = resolve(sources)
    for index, saved_model in enumerate(resolved):
        warm_start_logic.copy_tree(saved_model, member_dir(artifact_uri, index))
    return resolved


def member_dir(artifact_uri: str, index: int) -> str:
    return os.path.join(artifact_uri, MEMBERS_SUBDIR, f"{index:02d}")


def member_dirs(artifact_uri: str) -> List[str]:
    """The staged members' SavedModel folders, in the order given."""
    import tensorflow as tf

    root = os.path.join(artifact_uri, MEMBERS_SUBDIR)
    found = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(root)) if tf.io.gfile.isdir(root) else []
    dirs = [os.path.join(root, name) for name in found
            if name.isdigit() and tf.io.gfile.exists(os.path.join(root, name, "saved_model.pb"))]
    if not dirs:
        raise warm_start.WarmStartError(f"{FLAG}: the teacher artifact {artifact_uri} has no members")
    return dirs
