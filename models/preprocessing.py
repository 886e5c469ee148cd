"""Transform: raw pixels -> model input. `preprocessing_fn` is the tf.Transform entry point
(Transform is given its import path, models.preprocessing.preprocessing_fn); the work is in
plain functions that are unit-tested on their own."""

import tensorflow as tf

from core import features


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """int pixels [N, 2304] in 0..255 -> float32 [N, 48, 48, 1] in [0, 1]."""
    image = tf.cast(pixels, tf.float32) / 255.0
    return tf.reshape(image, (-1,) + features.IMAGE_SHAPE)


def flatten_label(label: tf.Tensor) -> tf.Tensor:
    """int label [N, 1] -> int64 [N] (sparse class ids in FER order)."""
    return tf.reshape(tf.cast(label, tf.int64), [-1])


def brightness_and_contrast(image: tf.Tensor):
    """float image [N, 48, 48, 1] in [0, 1] -> (mean brightness [N], contrast [N]); contrast
    is the standard deviation of the face's pixels (RMS contrast)."""
    flat = tf.reshape(image, [tf.shape(image)[0], -1])
    return tf.reduce_mean(flat, axis=1), tf.math.reduce_std(flat, axis=1)


def preprocessing_fn(inputs):
    """tf.Transform preprocessing_fn. The label is absent at serving time.

    Besides the model input it emits the slicing features: lighting and contrast buckets,
    quantiles of the analysed (training) data; TFMA reads them through the exported
    `transform_features` signature, the model never does."""
    import tensorflow_transform as tft

    image = scale_pixels(inputs[features.PIXELS_KEY])
    brightness, contrast = brightness_and_contrast(image)
    outputs = {
        features.IMAGE_KEY: image,
        features.LIGHTING_BUCKET_KEY: tft.bucketize(brightness, features.NUM_QUANTILE_BUCKETS),
        features.CONTRAST_BUCKET_KEY: tft.bucketize(contrast, features.NUM_QUANTILE_BUCKETS),
    }
    if features.LABEL_KEY in inputs:
        outputs[features.LABEL_KEY] = flatten_label(inputs[features.LABEL_KEY])
    return outputs
