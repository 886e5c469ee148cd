"""InfraValidator's TF Serving image, TF-free (the CLI's help reads it): the tag matches the
TensorFlow the model is exported with (2.16)."""

DEFAULT_SERVING_IMAGE = "tensorflow/serving"
DEFAULT_SERVING_TAG = "2.16.1"
