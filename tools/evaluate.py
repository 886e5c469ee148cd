"""`fer-pipeline evaluate`: a pushed SavedModel judged through its `serving_default`
signature (exactly what TF Serving clients call) on one Usage of a FER CSV.

The CSV is read by the ExampleGen's parser: rows it rejects are counted and reported, never
silently dropped or guessed at.
"""

from typing import Dict, Tuple

import numpy as np

from components.fer_example_gen import parser
from core import features, names

USAGES = tuple(features.USAGE_TO_SPLIT)  # Training, PublicTest, PrivateTest
# --usage also takes the validation carve by its split name: the split that selected the model.
CARVE = features.VALID_SPLIT


def evaluation_metrics(labels: np.ndarray, probabilities: np.ndarray) -> Dict:
    """accuracy, top-2 accuracy, per-class precision/recall/support (arg-max), and the
    confusion matrix (rows: true class, columns: predicted), in FER label order."""
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    top2 = np.argsort(probabilities, axis=1)[:, -2:]
    confusion = np.zeros((features.NUM_CLASSES, features.NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {}
    for class_id, name in enumerate(features.CLASS_NAMES):
        support, predicted_as = int(confusion[class_id].sum()), int(confusion[:, class_id].sum())
        hits = int(confusion[class_id, class_id])
        per_class[name] = {"support": support,
                           "recall": hits / support if support else None,
                           "precision": hits / predicted_as if predicted_as else None}
    count = len(labels)
    from pipeline.tfma_metrics import macro_f1_from_confusion  # the Evaluator's own definition

    return {
        "examples": count,
        "accuracy": float((predicted == labels).mean()) if count else None,
        names.TOP2_ACCURACY: float((top2 == labels[:, None]).any(axis=1).mean()) if count else None,
        names.MACRO_F1: macro_f1_from_confusion(confusion) if count else None,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": list(features.CLASS_NAMES),
    }


def read_usage(csv_path: str, usage: str) -> Tuple[np.ndarray, np.ndarray, parser.ParseStats]:
    """(labels [N], images uint8 [N, 48, 48, 1], parse stats) of the rows of one Usage
    (Training: its train split and its validation carve together)."""
    if usage == CARVE:
        return read_splits(csv_path, (CARVE,))
    if usage not in features.USAGE_TO_SPLIT:
        raise ValueError(f"--usage must be one of {', '.join(USAGES + (CARVE,))}, got {usage!r}")
    split = features.USAGE_TO_SPLIT[usage]
    return read_splits(csv_path, (features.TRAIN_SPLIT, features.VALID_SPLIT) if split == features.TRAIN_SPLIT
                       else (split,))


def read_splits(csv_path: str, splits) -> Tuple[np.ndarray, np.ndarray, parser.ParseStats]:
    """The same for the rows the ExampleGen puts in `splits` (e.g. ("valid",), the carve)."""
    reader = parser.FerCsvReader(csv_path)
    labels, images = [], []
    for item in reader:
        if isinstance(item, parser.Row) and item.split in splits:
            labels.append(item.label)
            images.append(item.pixels)
    shape = (-1,) + features.IMAGE_SHAPE
    return (np.asarray(labels, np.int64), np.asarray(images, np.uint8).reshape(shape), reader.stats)


def predict(model_dir: str, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities [N, 7] of uint8 faces [N, 48, 48, 1] through the SavedModel's
    serving_default, as a TF Serving client gets them (TTA included where it has it)."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    return np.concatenate([
        serve(**{features.SERVING_IMAGE_INPUT: tf.constant(images[i:i + batch_size])})[
            features.SERVING_PROBABILITIES_OUTPUT].numpy()
        for i in range(0, len(images), batch_size)])


def evaluate(model_dir: str, csv_path: str, usage: str = "PublicTest", batch_size: int = 256) -> Dict:
    labels, images, stats = read_usage(csv_path, usage)
    if not len(labels):
        raise ValueError(f"{csv_path}: no valid {usage} rows (the file has {stats.valid} valid rows, "
                         f"{stats.rejected} rejected)")
    result = evaluation_metrics(labels, predict(model_dir, images, batch_size))
    result.update({"model": model_dir, "data": csv_path, "usage": usage, "rows_rejected": stats.rejected})
    return result
