"""preprocessing_fn: the plain functions, and a real tf.Transform (tft_beam) run."""

import numpy as np
import tensorflow as tf

from models import features, preprocessing
from tests.models.conftest import raw_examples


def test_scale_pixels_shape_range_and_order():
    pixels = tf.constant([np.arange(features.NUM_PIXELS) % 256], dtype=tf.int64)
    image = preprocessing.scale_pixels(pixels).numpy()
    assert image.shape == (1, 48, 48, 1) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    # Row-major: pixel 49 is row 1, column 1.
    assert image[0, 1, 1, 0] == np.float32(49 / 255.0)


def test_flatten_label():
    assert preprocessing.flatten_label(tf.constant([[3], [6]], tf.int64)).numpy().tolist() == [3, 6]


def test_preprocessing_fn_without_label_for_serving():
    out = preprocessing.preprocessing_fn({features.PIXELS_KEY: tf.zeros([2, features.NUM_PIXELS], tf.int64)})
    assert set(out) == {features.IMAGE_KEY}


def test_tft_beam_run_on_fixture(transform_output_dir):
    import tensorflow_transform as tft

    directory, transformed = transform_output_dir
    raw = raw_examples()
    assert len(transformed) == len(raw)
    for got, want in zip(transformed, raw):
        image = np.asarray(got[features.IMAGE_KEY])
        assert image.shape == features.IMAGE_SHAPE
        np.testing.assert_allclose(image.ravel(), want[features.PIXELS_KEY] / 255.0, rtol=1e-6)
        assert int(got[features.LABEL_KEY]) == int(want[features.LABEL_KEY][0])
    output = tft.TFTransformOutput(directory)
    spec = output.transformed_feature_spec()
    assert spec[features.IMAGE_KEY].shape == list(features.IMAGE_SHAPE)
    assert spec[features.IMAGE_KEY].dtype == tf.float32
