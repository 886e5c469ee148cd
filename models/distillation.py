"""Knowledge distillation: a student trained on targets that blend its labels with a teacher's
probabilities. The teacher is one or more SavedModels this project exported (the shipped model,
pushed ones, earlier runs' Trainer models): an ensemble whose members are averaged.

    target = (1 - alpha) * label + alpha * teacher(image) ** (1 / T), renormalised

`label` is the one-hot class (label-smoothed and mixed as the recipe says) and `image` is the
very batch the student sees, after augmentation and mixup, so the teacher judges what the
student is shown. Training on that target with cross-entropy is Hinton et al.'s loss at the
student's temperature 1: (1 - alpha) CE(label) + alpha CE(teacher). T > 1 softens the
teacher's distribution, which is all the temperature does here. A recipe with label smoothing
smooths the whole blended target (Keras' CategoricalCrossentropy), the teacher's share too.
Each member answers as its serving signature does: whether it averages a face with its mirror
image (flip TTA) is read from the signature itself, on a probe batch, when it is loaded.

The teacher runs in the input pipeline (no gradient, inference mode) under the run's precision
policy; only the training batches get teacher targets, so val accuracy stays the plain one.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from core import features
from models import augmentation, registry, warm_start


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # the catalogue architecture its weights fill
    model: keras.Model
    tta: bool  # its serving signature answers the mean of a face and its mirror image
    saved_model: str


def served_with_tta(saved_model_dir: str, model: keras.Model) -> bool:
    """Whether the SavedModel's serving_default averages a face with its mirror image: its
    answers on a probe batch of random faces against the restored float32 model's, plain and
    with flip TTA (WarmStartError, one line, when they match neither)."""
    images = np.random.default_rng(0).integers(0, 256, (4,) + features.IMAGE_SHAPE).astype(np.uint8)
    serve = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    served = serve(**{features.SERVING_IMAGE_INPUT: tf.constant(images)})[features.SERVING_PROBABILITIES_OUTPUT]
    scaled = tf.constant(images.astype(np.float32) / 255.0)
    plain = model(scaled, training=False)
    mirrored = model(augmentation.flip_horizontally(scaled), training=False)
    for tta, answer in ((False, plain), (True, (plain + mirrored) / 2)):
        if np.allclose(answer.numpy(), served.numpy(), atol=1e-4):
            return tta
    raise warm_start.WarmStartError(f"--teacher {saved_model_dir}: its serving signature answers neither as its "
                                    "weights do nor as their flip TTA does")


def load_teacher(saved_model_dirs: Sequence[str]) -> list:
    """The teacher's members (WarmStartError, one line naming the folder, for one that is no
    SavedModel this project exported)."""
    members = []
    for directory in saved_model_dirs:
        name, model = warm_start.restore(directory, flag="--teacher")  # float32
        tta = served_with_tta(directory, model)
        if keras.mixed_precision.global_policy().name != "float32":  # the run's policy: bf16 is faster
            weights, model = model.get_weights(), registry.build(name)
            model.set_weights(weights)
        model.trainable = False
        members.append(Member(name, model, tta, directory))
    if not members:
        raise ValueError("a teacher needs at least one SavedModel")
    return members


def weights_fingerprint(model: keras.Model) -> str:
    """sha256 of a model's weights, in order: the same teacher wherever its folder moved."""
    import hashlib

    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights, np.float32).tobytes())
    return digest.hexdigest()


def member_record(member: Member) -> dict:
    """What a checkpoint records of a teacher member: its architecture, TTA and weights."""
    return {"name": member.name, "tta": member.tta, "weights_sha256": weights_fingerprint(member.model)}


def member_probabilities(member: Member, images: tf.Tensor) -> tf.Tensor:
    probabilities = tf.cast(member.model(images, training=False), tf.float32)
    if member.tta:
        mirrored = tf.cast(member.model(augmentation.flip_horizontally(images), training=False), tf.float32)
        probabilities = 0.5 * (probabilities + mirrored)
    return probabilities


def teacher_probabilities(members: Sequence[Member], images: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """[B, H, W, 1] images -> [B, classes]: the members' mean probabilities, softened by
    `temperature` (p ** (1/T), renormalised; T = 1 leaves them as they are)."""
    mean = tf.add_n([member_probabilities(m, images) for m in members]) / float(len(members))
    return soften(mean, temperature)


def soften(probabilities: tf.Tensor, temperature: float) -> tf.Tensor:
    """softmax(log p / T): the distribution the logits divided by T would give."""
    if temperature == 1.0:
        return probabilities
    return tf.nn.softmax(tf.math.log(tf.maximum(probabilities, 1e-8)) / temperature, axis=-1)


def blend_targets(labels: tf.Tensor, teacher: tf.Tensor, alpha: float) -> tf.Tensor:
    """(1 - alpha) * labels + alpha * teacher: both [B, classes] distributions."""
    return (1.0 - alpha) * tf.cast(labels, tf.float32) + alpha * teacher


def ensemble_accuracy(members: Sequence[Member], batches: tf.data.Dataset) -> float:
    """The teacher's accuracy on (image, class id) batches (at temperature 1: T keeps the argmax)."""
    right = total = 0
    for images, labels in batches:
        predicted = tf.argmax(teacher_probabilities(members, images), axis=-1, output_type=tf.int32)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        right += int(tf.reduce_sum(tf.cast(predicted == labels, tf.int32)))
        total += int(labels.shape[0])
    return right / total if total else float("nan")
