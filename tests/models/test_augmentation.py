"""Training augmentation: the projective transforms do what their parameters say."""

import math

import numpy as np
import tensorflow as tf

from models import augmentation


def _images(n=3, seed=0):
    return tf.constant(np.random.default_rng(seed).random((n, 48, 48, 1)).astype("float32"))


def _transform(images, angle=0.0, dx=0.0, dy=0.0, flip=False):
    n = images.shape[0]
    m = augmentation.transform_matrices(tf.fill([n], angle), tf.fill([n], dx), tf.fill([n], dy),
                                        tf.fill([n], flip), 48, 48)
    return augmentation.apply_transforms(images, m).numpy()


def test_zero_parameters_are_the_identity():
    images = _images()
    np.testing.assert_allclose(_transform(images), images.numpy(), atol=1e-6)


def test_flip_mirrors_left_and_right():
    images = _images()
    np.testing.assert_allclose(_transform(images, flip=True), images.numpy()[:, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(augmentation.flip_horizontally(images).numpy(), images.numpy()[:, :, ::-1])


def test_shift_moves_content_by_whole_pixels():
    images = _images()
    shifted = _transform(images, dx=2.0, dy=1.0)  # output (x, y) samples input (x + 2, y + 1)
    np.testing.assert_allclose(shifted[:, :-1, :-2], images.numpy()[:, 1:, 2:], atol=1e-6)


def test_quarter_turn_rotates_the_grid():
    images = _images()
    turned = _transform(images, angle=math.pi / 2)
    # output (x, y) samples input at x_in = cx - (y - cy) = 47 - y, y_in = cy + (x - cx) = x:
    # out[row, col] = in[col, 47 - row], a transpose read bottom-up
    np.testing.assert_allclose(turned, np.transpose(images.numpy(), (0, 2, 1, 3))[:, ::-1], atol=1e-5)


def test_random_augmentation_keeps_shape_range_and_differs_per_image():
    tf.random.set_seed(0)
    images = tf.repeat(_images(1), 8, axis=0)
    out = augmentation.augment_images(images).numpy()
    assert out.shape == (8, 48, 48, 1) and out.min() >= 0.0 and out.max() <= 1.0
    # inside tf.data (graph mode, unknown batch) the static image shape survives
    spec = tf.data.Dataset.from_tensors(images).map(augmentation.augment_images).element_spec
    assert spec.shape.as_list() == [8, 48, 48, 1]
    unknown_batch = tf.data.Dataset.from_tensor_slices(images).batch(3).map(augmentation.augment_images)
    assert unknown_batch.element_spec.shape.as_list() == [None, 48, 48, 1]
    assert len({out[i].tobytes() for i in range(8)}) == 8
