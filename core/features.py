"""The single source of feature keys, image geometry and class names.

Everything that names a feature, a split or a class imports it from here. This module
must stay free of TensorFlow so that light tools (the CSV checker, the demo-data writer,
clients) can use it without loading TF.
"""

import os

IMAGE_HEIGHT = 48
IMAGE_WIDTH = 48
IMAGE_CHANNELS = 1
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS)
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH * IMAGE_CHANNELS  # 2,304

# FER-2013 label order. Every part of the system (Trainer output, serving signature,
# Evaluator class ids, client overlay) relies on this exact order.
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASS_NAMES)

# Raw tf.Example features written by the ExampleGen.
PIXELS_KEY = "pixels"  # int64 x 2304, row-major, 0..255
LABEL_KEY = "label"  # int64 in [0, 6]

# Transformed features produced by Transform (models/preprocessing.py).
IMAGE_KEY = "image"  # float32 [48, 48, 1] in [0, 1]
# Slicing features (the Evaluator slices on them; the model does not read them): the face's
# mean brightness and its contrast (pixel standard deviation), each bucketed into quantiles
# of the training split that Transform computes. Bucket 0 is the darkest / flattest.
LIGHTING_BUCKET_KEY = "lighting_bucket"  # int64 in [0, NUM_QUANTILE_BUCKETS)
CONTRAST_BUCKET_KEY = "contrast_bucket"  # int64 in [0, NUM_QUANTILE_BUCKETS)
NUM_QUANTILE_BUCKETS = 4
LIGHTING_BUCKET_NAMES = ("darkest quarter", "darker quarter", "brighter quarter", "brightest quarter")
CONTRAST_BUCKET_NAMES = ("lowest-contrast quarter", "lower-contrast quarter", "higher-contrast quarter",
                         "highest-contrast quarter")

# Serving contract (serving_default and the tf.Example signature).
SERVING_MODEL_NAME = "fer"  # TF Serving's model name: <model_base_path>=.../fer/<version>/
TF_SERVING_GRPC_PORT, TF_SERVING_REST_PORT = 8500, 8501  # tensorflow_model_server's default ports
SERVING_IMAGE_INPUT = "image"  # uint8 [N, 48, 48, 1]
SERVING_PROBABILITIES_OUTPUT = "probabilities"  # float32 [N, 7]
EXAMPLES_SIGNATURE = "classify"
EXAMPLES_INPUT = "inputs"  # serialized tf.Example, the name TF Serving's Classify expects
CLASSIFY_SCORES_OUTPUT = "scores"
CLASSIFY_CLASSES_OUTPUT = "classes"

# The shipped model: a TF Serving model base path inside this package
# (models/pretrained/<name>/<version>/), with its model card beside the versions. It is the
# default of `fer-pipeline serve`, `fer-pipeline predict` and client.analyze.
SHIPPED_MODEL_NAME = "compact_resnet_v2"
SHIPPED_MODEL_BASE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                                       "pretrained", SHIPPED_MODEL_NAME)

# CSV format (Kaggle FER-2013).
CSV_EMOTION_COLUMN = "emotion"
CSV_PIXELS_COLUMN = "pixels"
CSV_USAGE_COLUMN = "Usage"

# Usage value -> split name. Training rows are split again into `train` and a seeded,
# stratified validation carve `valid`, the only split that selects a model (early stopping,
# best weights, the learning-rate plateau, Tuner scoring). PublicTest (`eval`) is what the
# Evaluator reports and blesses on; PrivateTest (`test`) is reported too. With no Usage
# column the ExampleGen makes a seeded, stratified train/valid/eval split (80/10/10).
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "eval", "PrivateTest": "test"}
SPLITS = ("train", "valid", "eval", "test")
TRAIN_SPLIT, VALID_SPLIT, EVAL_SPLIT, TEST_SPLIT = SPLITS
