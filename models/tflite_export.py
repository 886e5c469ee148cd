"""A TFLite twin of the served model, for running it in-process (fer-webcam without a
server): uint8 faces [N, 48, 48, 1] -> probabilities [N, 7], the same computation as the
SavedModel's serving_default (models/preprocessing.scale_pixels, then the model, averaged
with its mirror image when the model serves with flip TTA).

The converter cannot read Keras 3's batch-norm variables through their casts (an MLIR
"missing attribute 'value'" abort in TF 2.16), so the serving function is frozen first:
its variables become constants, then it converts.

Quantization: "float32" (the same numbers), "float16" (weights in half precision), or
"int8" (weights and activations in 8 bits, calibrated on real faces given as
`calibration`; inputs and outputs stay uint8 and float32). bench/tflite_bench.py measures
each against the SavedModel on PublicTest and in time.

The Trainer ships the int8 twin only when `check_twin` finds it within TWIN_TOLERANCE of the
model's accuracy on the valid carve (the split that selects; PublicTest only reports):
quantization error depends on the weights, so a twin that held for one model is no promise
for the next.
"""

from typing import Callable, Dict, Iterable, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from core import features
from models import augmentation, preprocessing, registry

TFLITE_FILE = "fer.tflite"  # written inside the SavedModel's directory, so it travels with it
QUANTIZATIONS = ("float32", "float16", "int8")
CALIBRATION_FACES = 500
# How far below its model's accuracy a twin may score and still ship (a fraction): version 1's
# int8 twin was 0.06 points below its SavedModel (bench/results/tflite.md).
TWIN_TOLERANCE = 0.005


def serving_function(model: keras.Model, tta: bool):
    """The served computation as a tf.function over uint8 faces."""
    @tf.function(input_signature=[tf.TensorSpec((None,) + features.IMAGE_SHAPE, tf.uint8,
                                                name=features.SERVING_IMAGE_INPUT)])
    def serve(image):
        scaled = preprocessing.scale_pixels(tf.reshape(image, [-1, features.NUM_PIXELS]))
        probabilities = model(scaled, training=False)
        if tta:
            probabilities = (probabilities + model(augmentation.flip_horizontally(scaled), training=False)) / 2.0
        return {features.SERVING_PROBABILITIES_OUTPUT: probabilities}

    return serve


def to_tflite(model: keras.Model, tta: bool, quantization: str = "float32",
              calibration: Optional[np.ndarray] = None) -> bytes:
    """The TFLite flatbuffer. int8 needs `calibration`: uint8 faces [N, 48, 48, 1] of the
    training split (never of a split that reports)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
    frozen = convert_variables_to_constants_v2(serving_function(model, tta).get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if calibration is None or not len(calibration):
            raise ValueError("int8 quantization needs calibration faces")
        faces = np.asarray(calibration, np.uint8).reshape((-1,) + features.IMAGE_SHAPE)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([face[np.newaxis]] for face in faces)
    return converter.convert()


def keras_model_from_saved_model(saved_model_dir: str, model_name: str) -> keras.Model:
    """The registry model `model_name` with the weights of an exported SavedModel (its
    ServingModule keeps the Keras model as `model`, so the checkpoint's object graph matches)."""
    model = registry.build(model_name)
    status = tf.train.Checkpoint(model=model).read(f"{saved_model_dir}/variables/variables")
    status.expect_partial().assert_existing_objects_matched()
    return model


def _as_served(images) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def first_faces(batches: Iterable, limit: int = CALIBRATION_FACES) -> np.ndarray:
    """Up to `limit` uint8 faces from (float image [B,48,48,1] in [0,1], label) batches: the
    Trainer's transformed training data, back in the served input's type."""
    taken, count = [], 0
    for images, _ in batches:
        taken.append(_as_served(images)[:limit - count])
        count += len(taken[-1])
        if count >= limit:
            break
    return np.concatenate(taken) if taken else np.zeros((0,) + features.IMAGE_SHAPE, np.uint8)


def faces_and_labels(batches: Iterable) -> Tuple[np.ndarray, np.ndarray]:
    """Every uint8 face and class id of (float image, class id) batches (the valid carve)."""
    faces, labels = [], []
    for images, ids in batches:
        faces.append(_as_served(images))
        labels.append(np.asarray(ids).reshape(-1))
    if not faces:
        return np.zeros((0,) + features.IMAGE_SHAPE, np.uint8), np.zeros((0,), np.int64)
    return np.concatenate(faces), np.concatenate(labels)


def run_twin(flatbuffer: bytes, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities [N, 7] of uint8 faces [N, 48, 48, 1] through the flatbuffer, `batch_size`
    faces a call (the interpreter's memory grows with its input)."""
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
    source, result = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    rows, out = None, []
    for start in range(0, len(faces), batch_size):
        batch = np.ascontiguousarray(faces[start:start + batch_size], np.uint8)
        if rows != len(batch):
            interpreter.resize_tensor_input(source, list(batch.shape))
            interpreter.allocate_tensors()
            rows = len(batch)
        interpreter.set_tensor(source, batch)
        interpreter.invoke()
        out.append(interpreter.get_tensor(result).copy())
    return np.concatenate(out) if out else np.zeros((0, features.NUM_CLASSES), np.float32)


def check_twin(flatbuffer: bytes, serve: Callable[[np.ndarray], np.ndarray], faces: np.ndarray,
               labels: np.ndarray, tolerance: float = TWIN_TOLERANCE) -> Dict:
    """The twin against the model it was made from on labelled faces: both accuracies, their
    top-1 agreement, and whether the twin is within `tolerance` of the model's accuracy.
    `serve`: uint8 faces -> the model's probabilities (its serving computation). ValueError for
    no faces, or labels that are not one a face."""
    labels = np.asarray(labels).reshape(-1)
    if not len(faces) or len(labels) != len(faces):
        raise ValueError(f"a twin is checked on labelled faces: got {len(faces)} faces and {len(labels)} labels")
    twin = run_twin(flatbuffer, faces).argmax(1)
    model = np.concatenate([np.asarray(serve(faces[i:i + 256])) for i in range(0, len(faces), 256)]).argmax(1)
    model_accuracy, twin_accuracy = float((model == labels).mean()), float((twin == labels).mean())
    return {"faces": int(len(labels)), "model_accuracy": round(model_accuracy, 4), "twin_accuracy": round(twin_accuracy, 4),
            "agreement": round(float((twin == model).mean()), 4),
            "accepted": bool(twin_accuracy >= model_accuracy - tolerance)}
