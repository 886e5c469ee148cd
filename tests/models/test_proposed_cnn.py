"""The proposed CNN against the paper's Table IV."""

import keras

from models import proposed_cnn, registry


def _conv_params(c_in, c_out):
    return 3 * 3 * c_in * c_out + c_out


def test_layer_sequence_matches_table_iv():
    model = proposed_cnn.build()
    kinds = [(type(l).__name__, getattr(l, "filters", None) or getattr(l, "units", None) or getattr(l, "rate", None))
             for l in model.layers[1:]]
    assert kinds == [
        ("Conv2D", 64), ("Conv2D", 64), ("MaxPooling2D", None), ("Dropout", 0.25),
        ("Conv2D", 128), ("Conv2D", 128), ("Conv2D", 256), ("Conv2D", 256), ("MaxPooling2D", None),
        ("Dropout", 0.25), ("Flatten", None), ("Dense", 1024), ("Dropout", 0.5), ("Dense", 7),
    ]
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.kernel_size == (3, 3) and layer.activation.__name__ == "relu"
        if isinstance(layer, keras.layers.MaxPooling2D):
            assert layer.pool_size == (2, 2)
    hidden, output = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert hidden.activation.__name__ == "relu" and float(hidden.kernel_regularizer.l2) == 0.001
    assert output.activation.__name__ == "softmax" and output.kernel_regularizer is None
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)


def test_parameter_count_follows_from_the_architecture():
    # valid padding: 48 -46 -44 pool 22 -20 -18 -16 -14 pool 7  -> 7*7*256 at the flatten
    convs = _conv_params(1, 64) + _conv_params(64, 64) + _conv_params(64, 128) + _conv_params(128, 128)
    convs += _conv_params(128, 256) + _conv_params(256, 256)
    dense = (7 * 7 * 256) * 1024 + 1024 + 1024 * 7 + 7
    assert proposed_cnn.build().count_params() == convs + dense == 13_997_511


def test_same_padding_variant():
    assert proposed_cnn.build(padding="same").layers[-4].output.shape[-1] == 12 * 12 * 256


def test_registry():
    assert registry.DEFAULT_MODEL == "proposed_cnn"
    assert registry.build("proposed_cnn").name == "proposed_cnn"
    try:
        registry.build("nope")
    except ValueError as e:
        assert "proposed_cnn" in str(e)
    else:
        raise AssertionError("unknown model accepted")
