"""The registry's models: shapes, layer sequences, and their training recipes."""

import keras
import pytest

from models import feedforward, registry, simple_cnn, trainer, vgg_bn


def _layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers[1:]]


@pytest.mark.parametrize("name", sorted(registry.MODELS))
def test_every_model_maps_the_image_to_seven_probabilities(name):
    model = registry.build(name)
    assert model.name == name
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_feedforward_is_input_one_hidden_layer_output_with_dropout_02():
    model = feedforward.build()
    assert _layer_kinds(model) == ["Flatten", "Dense", "Dropout", "Dense"]
    hidden, output = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert hidden.units == feedforward.HIDDEN_UNITS and hidden.activation.__name__ == "relu"
    assert model.layers[3].rate == 0.2
    assert model.count_params() == 2304 * 512 + 512 + 512 * 7 + 7


def test_simple_cnn_layers():
    model = simple_cnn.build()
    assert _layer_kinds(model) == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    # valid padding: 48 -46 pool 23 -21 pool 10 -> 10*10*64 at the flatten
    assert model.layers[5].output.shape[-1] == 10 * 10 * 64


def test_vgg_bn_has_batch_norm_after_every_convolution_and_four_pooled_blocks():
    model = vgg_bn.build()
    kinds = _layer_kinds(model)
    assert kinds.count("Conv2D") == 8 and kinds.count("MaxPooling2D") == 4
    for i, kind in enumerate(kinds):
        if kind == "Conv2D":
            assert kinds[i + 1] == "BatchNormalization"
    assert model.get_layer(index=kinds.index("Flatten") + 1).output.shape[-1] == 3 * 3 * 256
    # sized for 2 cores: far smaller than the proposed CNN's 14 M parameters
    assert model.count_params() < 2_000_000


def test_recipes_resolve_run_values_over_model_defaults_over_the_papers():
    paper = trainer.TrainConfig.from_dict({"model": "simple_cnn"})
    assert (paper.learning_rate, paper.lr_schedule, paper.augment, paper.tta, paper.patience) == (
        1e-4, "inverse_time", False, False, 4)
    strong = trainer.TrainConfig.from_dict({"model": "vgg_bn", "learning_rate": None})
    assert (strong.learning_rate, strong.lr_schedule, strong.augment, strong.tta, strong.patience) == (
        1e-3, "plateau", True, True, 8)
    told = trainer.TrainConfig.from_dict({"model": "vgg_bn", "learning_rate": 5e-4, "tta": False})
    assert told.learning_rate == 5e-4 and told.tta is False and told.augment is True


def test_decision_tree_is_refused_with_a_pointer_to_its_benchmark():
    with pytest.raises(ValueError, match="scikit-learn.*TF Serving.*bench/paper_tables.py"):
        registry.build("decision_tree")
    with pytest.raises(ValueError, match="unknown model 'nope'.*vgg_bn"):
        registry.spec("nope")
