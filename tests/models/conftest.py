import numpy as np
import pytest

from core import features


def raw_examples(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {
            features.PIXELS_KEY: rng.integers(0, 256, features.NUM_PIXELS).astype(np.int64),
            features.LABEL_KEY: np.array([i % features.NUM_CLASSES], dtype=np.int64),
        }
        for i in range(n)
    ]


def foreign_saved_model(path) -> str:
    """A SavedModel whose `model` child's variables fit no catalogue model."""
    import tensorflow as tf

    module = tf.Module()
    module.model = tf.Module()
    module.model.v = tf.Variable(np.zeros(3, np.float32))
    tf.saved_model.save(module, str(path))
    return str(path)


@pytest.fixture(scope="session")
def transform_output_dir(tmp_path_factory):
    """A real tf.Transform run of models.preprocessing.preprocessing_fn (tft_beam), written
    the way the Transform component writes its graph."""

    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import schema_utils
    import tensorflow_data_validation as tfdv

    from models.preprocessing import preprocessing_fn
    from schema import SCHEMA_FILE

    schema = tfdv.load_schema_text(SCHEMA_FILE)
    raw_metadata = schema_utils.schema_as_feature_spec(schema).feature_spec
    from tensorflow_transform.tf_metadata import dataset_metadata

    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(raw_metadata)
    out = str(tmp_path_factory.mktemp("transform"))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp")), force_tf_compat_v1=False):
        (transformed, transformed_metadata), transform_fn = (raw_examples(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(out)
    from tensorflow_transform.tf_metadata import metadata_io
    import tensorflow_transform as tft

    # The Transform component also writes the raw metadata; serving parses with it.
    metadata_io.write_metadata(metadata, f"{out}/{tft.TFTransformOutput.RAW_METADATA_DIR}")
    return out, transformed
