"""Exports a trained Keras 3 model with the Transform graph as a TF Serving SavedModel.

The Transform layer is a tf_keras object (tensorflow_transform uses legacy Keras), so it is
called inside the serving functions of a tf.Module, never inside the Keras 3 model.

Signatures:
  serving_default: image uint8 [N, 48, 48, 1] -> probabilities float32 [N, 7]
  classify:        inputs = serialized tf.Example [N] -> scores float32 [N, 7],
                   classes string [N, 7] (class names); method name
                   tensorflow/serving/classify so TF Serving's Classify API accepts it;
                   TFMA evaluates through it (prediction key `scores`).
  transform_features: inputs = serialized tf.Example [N] -> the slicing features
                   (lighting_bucket, contrast_bucket int64 [N]) computed by the Transform
                   graph; TFMA runs it as a preprocessing function to slice on them.

With `tta=True` (test-time augmentation) serving_default and classify average the
model's probabilities on each face and on its mirror image: clients gain the accuracy
without changing a request, for twice the model's compute. The signatures are the same
either way.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from core import features
from models import augmentation

CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
TRANSFORM_FEATURES_SIGNATURE = "transform_features"
SLICING_FEATURES = (features.LIGHTING_BUCKET_KEY, features.CONTRAST_BUCKET_KEY)


class ServingModule(tf.Module):
    def __init__(self, model, tf_transform_output, tta: bool = False):
        super().__init__()
        self.model = model
        self.tta = tta
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = dict(tf_transform_output.raw_feature_spec())
        raw_spec.pop(features.LABEL_KEY, None)  # clients do not send labels
        self._raw_spec = raw_spec
        self._class_names = tf.constant(features.CLASS_NAMES)

    def _predict(self, raw_features):
        image = self.tft_layer(raw_features)[features.IMAGE_KEY]
        probabilities = self.model(image, training=False)
        if self.tta:
            mirrored = self.model(augmentation.flip_horizontally(image), training=False)
            probabilities = (probabilities + mirrored) / 2.0
        return probabilities

    @tf.function(
        input_signature=[
            tf.TensorSpec((None,) + features.IMAGE_SHAPE, tf.uint8, name=features.SERVING_IMAGE_INPUT)
        ]
    )
    def serve_images(self, image):
        pixels = tf.reshape(tf.cast(image, tf.int64), [-1, features.NUM_PIXELS])
        return {features.SERVING_PROBABILITIES_OUTPUT: self._predict({features.PIXELS_KEY: pixels})}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)])
    def classify(self, inputs):
        raw = tf.io.parse_example(inputs, self._raw_spec)
        scores = self._predict(raw)
        classes = tf.tile(self._class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {features.CLASSIFY_SCORES_OUTPUT: scores, features.CLASSIFY_CLASSES_OUTPUT: classes}


    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)])
    def transform_features(self, inputs):
        transformed = self.tft_layer(tf.io.parse_example(inputs, self._raw_spec))
        return {key: transformed[key] for key in SLICING_FEATURES}


def export_serving_model(model, tf_transform_output, export_dir: str, tta: bool = False) -> str:
    module = ServingModule(model, tf_transform_output, tta=tta)
    signatures = {
        "serving_default": module.serve_images.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: module.classify.get_concrete_function(),
        TRANSFORM_FEATURES_SIGNATURE: module.transform_features.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    _mark_classify_signature(export_dir)
    return export_dir


def _mark_classify_signature(export_dir: str) -> None:
    """tf.saved_model.save writes every signature as 'predict'; TF Serving's Classify
    checks the method name, so the tf.Example signature gets the classify one."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[features.EXAMPLES_SIGNATURE].method_name = CLASSIFY_METHOD_NAME
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
