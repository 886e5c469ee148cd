"""Training-time augmentation, applied in the Trainer's input pipeline (tf.data) to
transformed batches. Never inside Transform: Transform's graph is also the serving graph,
and what it does must be deterministic.

Each image gets its own random horizontal flip, small rotation and shift, composed into
one projective transform (one ImageProjectiveTransformV3 call per batch, bilinear, edges
repeated), so the cost is a single resampling pass. Random erasing and mixup are further
levers a recipe may turn on (models/trainer.py prepare_batches).
"""

import math

import tensorflow as tf

MAX_ROTATION_DEGREES = 10.0
MAX_SHIFT_PIXELS = 4.0  # about 8 % of 48: small face-crop jitter


def transform_matrices(angle: tf.Tensor, shift_x: tf.Tensor, shift_y: tf.Tensor, flip: tf.Tensor,
                       height: int, width: int) -> tf.Tensor:
    """Per image [B] parameters -> [B, 8] projective transforms (output pixel -> input
    pixel, the convention of ImageProjectiveTransformV3): rotate by `angle` (radians)
    about the centre, mirror horizontally where `flip` is True, then shift."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    sign = tf.where(flip, -1.0, 1.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1 = sign * cos, -sign * sin
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy + shift_x
    b2 = cy - b0 * cx - b1 * cy + shift_y
    zeros = tf.zeros_like(angle)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def apply_transforms(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")
    out.set_shape(images.shape)  # the raw op forgets H, W, C, which Flatten needs
    return out


def augment_images(images: tf.Tensor, max_rotation_degrees: float = MAX_ROTATION_DEGREES,
                   max_shift_pixels: float = MAX_SHIFT_PIXELS) -> tf.Tensor:
    """float images [B, H, W, C] -> randomly flipped, rotated and shifted images."""
    batch = tf.shape(images)[0]
    limit = max_rotation_degrees * math.pi / 180.0
    angle = tf.random.uniform([batch], -limit, limit)
    shift_x = tf.random.uniform([batch], -max_shift_pixels, max_shift_pixels)
    shift_y = tf.random.uniform([batch], -max_shift_pixels, max_shift_pixels)
    flip = tf.random.uniform([batch]) < 0.5
    matrices = transform_matrices(angle, shift_x, shift_y, flip, images.shape[1], images.shape[2])
    return apply_transforms(images, matrices)


def random_erasing(images: tf.Tensor, probability: float, min_area: float = 0.02, max_area: float = 0.25,
                   max_aspect: float = 3.0) -> tf.Tensor:
    """Random erasing (Zhong et al. 2017): with `probability`, each image [B, H, W, C] gets one
    rectangle of `min_area`..`max_area` of its area, aspect ratio within 1/max_aspect..max_aspect,
    filled with uniform noise. One vectorised mask per batch, no per-image loop."""
    shape = tf.shape(images)
    batch, height, width = shape[0], images.shape[1], images.shape[2]
    area = tf.random.uniform([batch], min_area, max_area) * float(height * width)
    log_aspect = tf.random.uniform([batch], -math.log(max_aspect), math.log(max_aspect))
    aspect = tf.exp(log_aspect)
    box_h = tf.minimum(tf.sqrt(area * aspect), float(height))
    box_w = tf.minimum(tf.sqrt(area / aspect), float(width))
    top = tf.random.uniform([batch]) * (float(height) - box_h)
    left = tf.random.uniform([batch]) * (float(width) - box_w)
    rows = tf.range(height, dtype=tf.float32)[tf.newaxis, :, tf.newaxis]
    cols = tf.range(width, dtype=tf.float32)[tf.newaxis, tf.newaxis, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
    erase = inside & (tf.random.uniform([batch]) < probability)[:, None, None]
    noise = tf.random.uniform(shape, dtype=images.dtype)
    return tf.where(erase[..., tf.newaxis], noise, images)


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float) -> tuple:
    """mixup (Zhang et al. 2018): each image and its one-hot label [B, K] blended with those of
    another image of the batch, weight lambda ~ Beta(alpha, alpha) per image (kept >= 0.5, so
    the first image dominates)."""
    batch = tf.shape(images)[0]
    a = tf.random.gamma([batch], alpha)
    b = tf.random.gamma([batch], alpha)
    lam = a / (a + b)
    lam = tf.maximum(lam, 1.0 - lam)
    partner = tf.random.shuffle(tf.range(batch))
    lam_images = tf.cast(lam, images.dtype)[:, None, None, None]
    lam_labels = tf.cast(lam, labels.dtype)[:, None]
    mixed_images = lam_images * images + (1.0 - lam_images) * tf.gather(images, partner)
    mixed_labels = lam_labels * labels + (1.0 - lam_labels) * tf.gather(labels, partner)
    return mixed_images, mixed_labels


def flip_horizontally(images: tf.Tensor) -> tf.Tensor:
    """The test-time augmentation view: the mirror image ([B, H, W, C])."""
    return tf.reverse(images, axis=[2])
