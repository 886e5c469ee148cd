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
"""

from typing import Iterable, Optional

import keras
import numpy as np
import tensorflow as tf

from core import features
from models import augmentation, preprocessing, registry

TFLITE_FILE = "fer.tflite"  # written inside the SavedModel's directory, so it travels with it
QUANTIZATIONS = ("float32", "float16", "int8")
CALIBRATION_FACES = 500


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


def first_faces(batches: Iterable, limit: int = CALIBRATION_FACES) -> np.ndarray:
    """Up to `limit` uint8 faces from (float image [B,48,48,1] in [0,1], label) batches: the
    Trainer's transformed training data, back in the served input's type."""
    taken, count = [], 0
    for images, _ in batches:
        pixels = np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)
        taken.append(pixels[:limit - count])
        count += len(taken[-1])
        if count >= limit:
            break
    return np.concatenate(taken) if taken else np.zeros((0,) + features.IMAGE_SHAPE, np.uint8)
