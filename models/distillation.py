"""Knowledge distillation: a student trained on targets that blend its labels with a teacher's
probabilities. The teacher is one or more SavedModels this project exported (the shipped model,
pushed ones, earlier runs' Trainer models): an ensemble whose members are averaged.

    target = (1 - alpha) * label + alpha * teacher(image) ** (1 / T), renormalised

`label` is the one-hot class (label-smoothed and mixed as the recipe says) and `image` is the
very batch the student sees, after augmentation and mixup, so the teacher judges what the
student is shown. Training on that target with cross-entropy is Hinton et al.'s loss at the
student's temperature 1: (1 - alpha) CE(label) + alpha CE(teacher). T > 1 softens the
teacher's distribution, which is all the temperature does here. Each member serves as it was
exported: a member whose recipe has flip TTA averages each face with its mirror image.

The teacher runs in the input pipeline (no gradient, inference mode) under the run's precision
policy; only the training batches get teacher targets, so val accuracy stays the plain one.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import tensorflow as tf

from models import augmentation, catalog, registry, warm_start


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # the catalogue architecture its weights fill
    model: keras.Model
    tta: bool  # its recipe serves the mean of a face and its mirror image
    saved_model: str


def load_teacher(saved_model_dirs: Sequence[str]) -> list:
    """The teacher's members (WarmStartError, one line naming the folder, for one that is no
    SavedModel this project exported)."""
    members = []
    for directory in saved_model_dirs:
        name, model = warm_start.restore(directory, flag="--teacher")  # float32
        if keras.mixed_precision.global_policy().name != "float32":  # the run's policy: bf16 is faster
            weights, model = model.get_weights(), registry.build(name)
            model.set_weights(weights)
        model.trainable = False
        members.append(Member(name, model, bool(catalog.train_defaults(name).get("tta", False)), directory))
    if not members:
        raise ValueError("a teacher needs at least one SavedModel")
    return members


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
