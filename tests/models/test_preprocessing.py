"""preprocessing_fn: the plain functions, and a real tf.Transform (tft_beam) run."""

import numpy as np
import tensorflow as tf

from core import features
from models import preprocessing
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


def test_brightness_and_contrast():
    flat = np.zeros((2, features.NUM_PIXELS), np.float32)
    flat[0] = 0.5  # uniform grey: mean 0.5, no contrast
    flat[1, ::2] = 1.0  # half white, half black: mean 0.5, std 0.5
    brightness, contrast = preprocessing.brightness_and_contrast(tf.reshape(flat, (-1,) + features.IMAGE_SHAPE))
    np.testing.assert_allclose(brightness.numpy(), [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(contrast.numpy(), [0.0, 0.5], atol=1e-6)


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
    assert spec[features.LIGHTING_BUCKET_KEY].dtype == spec[features.CONTRAST_BUCKET_KEY].dtype == tf.int64


def test_slicing_buckets_are_quantiles_of_the_analysed_data(transform_output_dir):
    _, transformed = transform_output_dir
    raw = raw_examples()
    for key, statistic in ((features.LIGHTING_BUCKET_KEY, np.mean), (features.CONTRAST_BUCKET_KEY, np.std)):
        buckets = np.array([int(t[key]) for t in transformed])
        values = np.array([statistic(r[features.PIXELS_KEY] / 255.0) for r in raw])
        assert set(buckets) <= set(range(features.NUM_QUANTILE_BUCKETS)) and len(set(buckets)) > 1
        # Monotone: a brighter (higher-contrast) face never lands in a lower bucket.
        order = np.argsort(values)
        assert np.all(np.diff(buckets[order]) >= 0), (key, values[order], buckets[order])


def test_serving_graph_without_label(transform_output_dir):
    import tensorflow_transform as tft

    layer = tft.TFTransformOutput(transform_output_dir[0]).transform_features_layer()
    out = layer({features.PIXELS_KEY: tf.zeros([2, features.NUM_PIXELS], tf.int64)})
    assert features.LABEL_KEY not in out
    assert out[features.IMAGE_KEY].shape == (2,) + features.IMAGE_SHAPE
    assert out[features.LIGHTING_BUCKET_KEY].numpy().tolist() == [0, 0]  # black: darkest quarter
