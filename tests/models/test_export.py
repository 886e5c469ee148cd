"""The exported SavedModel: Transform graph + Keras 3 model behind TF Serving signatures."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components.fer_example_gen.encoding import serialize_example
from core import features
from models import export


@pytest.fixture(scope="module")
def exported(transform_output_dir, tmp_path_factory):
    import tensorflow_transform as tft

    inputs = keras.Input(features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    # Mean brightness -> class scores, so the output depends on the input pixels.
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path_factory.mktemp("export") / "1")
    export.export_serving_model(model, tft.TFTransformOutput(transform_output_dir[0]), path)
    return model, path


def test_serving_default_takes_uint8_images(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    assert fn.structured_input_signature[1][features.SERVING_IMAGE_INPUT].dtype == tf.uint8
    images = np.random.default_rng(0).integers(0, 256, (3,) + features.IMAGE_SHAPE).astype(np.uint8)
    probabilities = fn(image=tf.constant(images))[features.SERVING_PROBABILITIES_OUTPUT].numpy()
    assert probabilities.shape == (3, features.NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # Same as the Keras model on the scaled image: the Transform graph did the scaling.
    np.testing.assert_allclose(probabilities, model(images.astype("float32") / 255.0).numpy(), rtol=1e-5)


def test_classify_signature_parses_examples(exported):
    model, path = exported
    images = np.random.default_rng(1).integers(0, 256, (2,) + features.IMAGE_SHAPE).astype(np.uint8)
    serialized = [serialize_example(0, img.ravel()) for img in images]
    out = tf.saved_model.load(path).signatures[features.EXAMPLES_SIGNATURE](inputs=tf.constant(serialized))
    scores = out[features.CLASSIFY_SCORES_OUTPUT].numpy()
    np.testing.assert_allclose(scores, model(images.astype("float32") / 255.0).numpy(), rtol=1e-5)
    assert [c.decode() for c in out[features.CLASSIFY_CLASSES_OUTPUT].numpy()[0]] == list(features.CLASS_NAMES)


def test_classify_signature_has_the_classify_method_name(exported):
    saved_model = saved_model_pb2.SavedModel()
    with open(f"{exported[1]}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    signatures = saved_model.meta_graphs[0].signature_def
    assert signatures[features.EXAMPLES_SIGNATURE].method_name == "tensorflow/serving/classify"
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"
    assert list(signatures[features.EXAMPLES_SIGNATURE].inputs) == [features.EXAMPLES_INPUT]


def test_transform_features_signature_gives_the_slicing_buckets(exported):
    _, path = exported
    dark = serialize_example(0, np.full(features.NUM_PIXELS, 5, np.int64))
    bright = serialize_example(3, np.full(features.NUM_PIXELS, 250, np.int64))
    out = tf.saved_model.load(path).signatures[export.TRANSFORM_FEATURES_SIGNATURE](inputs=tf.constant([dark, bright]))
    assert set(out) == {features.LIGHTING_BUCKET_KEY, features.CONTRAST_BUCKET_KEY}
    lighting = out[features.LIGHTING_BUCKET_KEY].numpy().tolist()
    assert lighting[0] == 0 and lighting[1] == features.NUM_QUANTILE_BUCKETS - 1


def test_tta_export_averages_the_face_and_its_mirror_image(transform_output_dir, tmp_path):
    import tensorflow_transform as tft

    inputs = keras.Input(features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    # Flatten + Dense sees where pixels are, so a mirror image scores differently.
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    path = export.export_serving_model(model, tft.TFTransformOutput(transform_output_dir[0]), str(tmp_path / "1"),
                                       tta=True)
    images = np.random.default_rng(2).integers(0, 256, (3,) + features.IMAGE_SHAPE).astype(np.uint8)
    scaled = images.astype("float32") / 255.0
    plain, mirrored = model(scaled).numpy(), model(scaled[:, :, ::-1]).numpy()
    assert not np.allclose(plain, mirrored, atol=1e-4)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](image=tf.constant(images))[features.SERVING_PROBABILITIES_OUTPUT]
    np.testing.assert_allclose(served.numpy(), (plain + mirrored) / 2, rtol=1e-5, atol=1e-7)
    serialized = [serialize_example(0, img.ravel()) for img in images]
    scores = loaded.signatures[features.EXAMPLES_SIGNATURE](inputs=tf.constant(serialized))[features.CLASSIFY_SCORES_OUTPUT]
    np.testing.assert_allclose(scores.numpy(), served.numpy(), rtol=1e-5)


@pytest.mark.parametrize("tta, passes", [(False, 1), (True, 2)])
def test_serving_cost_counts_every_forward_pass_of_the_exported_signature(transform_output_dir, tmp_path, tta, passes):
    import tensorflow_transform as tft

    from models import macs

    inputs = keras.Input(features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = keras.layers.Conv2D(4, 3, strides=4)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4)(x)
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "1")
    export.export_serving_model(model, tft.TFTransformOutput(transform_output_dir[0]), path, tta=tta)
    assert macs.signature_op_counts(path) == {"Conv2D": 2 * passes, "DepthwiseConv2dNative": 0, "MatMul": passes}
    assert macs.forward_passes(path, model) == passes
    assert macs.forward_passes(path, model, features.EXAMPLES_SIGNATURE) == passes
    assert macs.serving_macs(path, model) == passes * macs.count_macs(model)
    with pytest.raises(ValueError, match="no signature 'predict'"):
        macs.signature_op_counts(path, "predict")
