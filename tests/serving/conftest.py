import socket

import numpy as np
import pytest

from core import features
from tests.models.conftest import transform_output_dir  # noqa: F401  (a real tft_beam Transform graph)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_version(transform_dir: str, path: str, bias: float) -> None:
    """A small model behind the real export path (Transform graph, serving_default, classify):
    mean brightness -> 7 scores; `bias` shifts class 0 so versions answer differently."""
    import keras
    import tensorflow_transform as tft

    from models import export

    inputs = keras.Input(features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(features.NUM_CLASSES, activation="softmax")
    model = keras.Model(inputs, dense(x))
    weights, biases = dense.get_weights()
    biases[0] = bias
    dense.set_weights([np.linspace(-1, 1, features.NUM_CLASSES)[None, :] * np.ones_like(weights), biases])
    export.export_serving_model(model, tft.TFTransformOutput(transform_dir), path)


@pytest.fixture(scope="module")
def model_base(transform_output_dir, tmp_path_factory):  # noqa: F811
    base = tmp_path_factory.mktemp("serving") / "fer"
    export_version(transform_output_dir[0], str(base / "1"), bias=0.0)
    return base
