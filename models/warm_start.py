"""Fine-tuning from a SavedModel this project exported (the shipped one, or any pushed one).

The recipe (FINE_TUNE_RECIPE, under the run's own values):
  * which layers train: every layer's weights except the BatchNormalization layers', which are
    frozen and run in inference mode, keeping the warm start's statistics (a few hundred new
    faces estimate them worse than FER-2013's 28,709 did);
  * at which learning rate: Adam at 1e-4 (a tenth of compact_resnet's from-scratch 1e-3),
    halved when the valid accuracy stalls, for at most 20 epochs with patience 5, without mixup;
  * with the warm start's augmentation and test-time augmentation (its catalogue recipe).
The warm start's accuracy on the valid split is measured before the first step, and the
Trainer reports the change; the Evaluator blesses against the warm start itself.

`resolve` is TF-free (the CLI checks the path with it); components/warm_start copies what it
resolves into a Model artifact; the rest loads Keras.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

from core import features
from models import catalog

FINE_TUNE_RECIPE: Dict[str, object] = {
    "learning_rate": 1e-4, "optimizer": "adam", "lr_schedule": "plateau", "epochs": 20, "patience": 5,
    # The shipped recipe's mixup regularises a 200-epoch run from scratch; 20 epochs on a few
    # hundred faces fit them without it (as every fine-tune here was measured).
    "mixup": 0.0,
}
SHIPPED = "shipped"  # --warm-start shipped: the model that ships in models/pretrained/
# Where TFX's Trainer and Evaluator read a Model artifact's SavedModel (tfx.utils.path_utils).
MODEL_ARTIFACT_SUBDIR = "Format-Serving"


class WarmStartError(ValueError):
    """The warm start is not a SavedModel this project exported (one line: what and where)."""


class LocalFiles:
    """The filesystem `resolve` looks at by default: os.path (TF-free, for the CLI's check).
    components/warm_start/logic.py passes tf.io.gfile's, which also reads gs:// and the like."""

    isfile = staticmethod(os.path.isfile)
    isdir = staticmethod(os.path.isdir)
    listdir = staticmethod(os.listdir)


def is_uri(path: str) -> bool:
    """gs://, s3://, hdfs:// ...: a path os.path must not make absolute."""
    return "://" in path


def resolve(path_or_name: str, files=LocalFiles, flag: str = "--warm-start") -> str:
    """A SavedModel directory: `shipped` or the shipped model's name; a SavedModel directory;
    a Model artifact folder (its Format-Serving/); or a TF Serving base path (its newest
    numeric version). `files` (isfile, isdir, listdir) reads the filesystem; `flag` names the
    option an error is about."""
    if path_or_name in (SHIPPED, features.SHIPPED_MODEL_NAME) and not (files.isdir(path_or_name) or files.isfile(path_or_name)):
        path_or_name = features.SHIPPED_MODEL_BASE_PATH
    path = path_or_name.rstrip("/") if is_uri(path_or_name) else os.path.abspath(path_or_name)
    for candidate in (path, os.path.join(path, MODEL_ARTIFACT_SUBDIR)):
        if files.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    if files.isdir(path):
        # gfile lists a remote folder's subfolders with a trailing "/"
        names = (v.rstrip("/") for v in files.listdir(path))
        versions = sorted((int(v) for v in names if v.isdigit()
                           and files.isfile(os.path.join(path, v, "saved_model.pb"))), reverse=True)
        if versions:
            return os.path.join(path, str(versions[0]))
        raise WarmStartError(f"{flag} {path_or_name}: no saved_model.pb in it, in its {MODEL_ARTIFACT_SUBDIR}/ "
                             "nor in a numeric version folder under it")
    raise WarmStartError(f"{flag} {path_or_name}: no such folder (give `{SHIPPED}`, a SavedModel, a Model "
                         "artifact or a pushed model's base path)")


def fine_tune_values(given: Dict[str, object]) -> Dict[str, object]:
    """The run's training values over the fine-tuning recipe (the model's own recipe, e.g. its
    augmentation and TTA, comes under both in TrainConfig.from_dict)."""
    return {**FINE_TUNE_RECIPE, **{k: v for k, v in given.items() if v is not None}}


_PREFIX = "model/_operations/"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _saved_weights(saved_model_dir: str) -> Dict[Tuple[int, str], object]:
    """{(layer index, variable name): value} of the Keras model inside an export of
    models/export.py (the SavedModel's `model` child; the optimizer's slots left out)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, "variables", "variables"))
    weights = {}
    for key in reader.get_variable_to_shape_map():
        if key.startswith(_PREFIX) and key.endswith(_SUFFIX):
            index, name = key[len(_PREFIX):-len(_SUFFIX)].split("/", 1)
            weights[(int(index), name.lstrip("_"))] = reader.get_tensor(key)
    return weights


def _fill(model, saved: Dict[Tuple[int, str], object]) -> bool:
    """Sets `model`'s weights from `saved` when they match it exactly (every variable, every
    shape, nothing left over); False, and `model` unchanged, otherwise."""
    pairs = []
    for index, operation in enumerate(model.operations):
        for variable in operation.weights:
            value = saved.get((index, variable.name))
            if value is None or tuple(value.shape) != tuple(variable.shape):
                return False
            pairs.append((variable, value))
    if len(pairs) != len(saved):
        return False
    for variable, value in pairs:
        variable.assign(value)
    return True


def restore(saved_model_dir: str, preferred: Optional[str] = None, flag: str = "--warm-start"):
    """(catalogue name, Keras model) with the warm start's weights. The architecture is the
    catalogue model whose variables the SavedModel's checkpoint fills exactly, `preferred`
    tried first. `flag` names the option an error is about (--teacher reads models too)."""
    from models import registry

    try:
        saved = _saved_weights(saved_model_dir)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is the same one-line error
        raise WarmStartError(f"{flag} {saved_model_dir}: cannot read its variables: {e}") from None
    import keras

    names = [preferred] if preferred in catalog.ENTRIES else []
    names += [n for n in catalog.ENTRIES if n not in names]
    # The export is float32; under a mixed policy the model's operations (casts among them)
    # would not line up with its checkpoint's.
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        for name in names:
            model = registry.build(name)
            if _fill(model, saved):
                return name, model
    finally:
        keras.mixed_precision.set_global_policy(policy)
    raise WarmStartError(f"{flag} {saved_model_dir}: its weights fit none of the catalogue's models "
                         f"({', '.join(catalog.ENTRIES)})")


def freeze_batch_norm(model) -> Tuple[int, int]:
    """The recipe's frozen layers: BatchNormalization (inference mode once not trainable).
    Returns (frozen layers, layers with weights that train)."""
    import keras

    frozen = trained = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen += 1
        elif layer.weights and not isinstance(layer, keras.Model):
            trained += 1
    return frozen, trained


def _layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        yield layer
