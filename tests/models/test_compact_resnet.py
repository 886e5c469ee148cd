"""The efficient model: its cost against the paper's CNN (the issue's 1/10 bound), the
figures its module states, and the multiply-add counter itself."""

import re

import keras
import pytest

from models import compact_resnet, macs, proposed_cnn, registry


def test_costs_at_most_a_tenth_of_the_proposed_cnn_and_matches_its_docstring():
    cheap, paper = macs.count_macs(compact_resnet.build()), macs.count_macs(proposed_cnn.build())
    assert cheap * 10 <= paper
    stated = [int(n.replace(",", "")) for n in re.findall(r"\d{1,3}(?:,\d{3})+", compact_resnet.__doc__)]
    assert stated[:2] == [cheap, paper]  # "31,169,632 multiply-adds ... the proposed CNN's 353,809,664"
    assert compact_resnet.build().count_params() in stated


def _parameters_by_hand(stem, modules):
    """compact_resnet's parameters counted from the architecture, not from the code that builds it."""
    def conv(k, c_in, c_out):  # 3x3 / 1x1 convolutions, no bias (batch norm follows)
        return k * k * c_in * c_out

    def bn(c):  # gamma, beta, moving mean, moving variance
        return 4 * c

    def module(c_in, f):  # shortcut 1x1 conv + BN, conv + BN, conv + BN
        return conv(1, c_in, f) + bn(f) + conv(3, c_in, f) + bn(f) + conv(3, f, f) + bn(f)

    total, c_in = conv(3, 1, stem) + bn(stem), stem
    for f in modules:
        total, c_in = total + module(c_in, f), f
    return total + c_in * 7 + 7


def test_parameter_count_by_hand_is_what_is_built_stated_and_shipped():
    """414,215 (version 1) and 930,919 (version 2), counted from the architecture: the built
    models, the docstring, the shipped SavedModel's stored variables and its card all hold them."""
    import json
    import os

    import numpy as np
    import tensorflow as tf

    from core import features
    from models import catalog

    by_hand = _parameters_by_hand(32, (32, 64, 160))
    assert by_hand == 414_215
    assert compact_resnet.build().count_params() == by_hand
    assert "414,215 parameters" in compact_resnet.__doc__
    assert _parameters_by_hand(32, (56, 112, 224)) == 930_919 == registry.build("compact_resnet_v2").count_params()
    base = features.SHIPPED_MODEL_BASE_PATH
    with open(os.path.join(base, "model_card.json")) as f:
        card = json.load(f)
    widths = {"stem_filters": 32, "module_filters": (32, 64, 160), **catalog.ENTRIES[card["model"]].build_kwargs}
    shipped = _parameters_by_hand(widths["stem_filters"], widths["module_filters"])
    assert card["parameters"] == shipped == registry.build(card["model"]).count_params()
    # the shipped SavedModel's checkpoint, read as stored: the model's layers' variables
    # (the optimizer's slots, also stored, left out)
    stored = tf.train.list_variables(os.path.join(base, card["version"], "variables", "variables"))
    layers = [(name, shape) for name, shape in stored if name.startswith("model/_operations/")]
    assert sum(int(np.prod(shape)) for _, shape in layers) == shipped, layers


def test_proposed_cnn_count_by_hand():
    # valid 3x3 convolutions: 48->46->44, pool 22->20->18->16->14, pool 7; dense 7*7*256 -> 1024 -> 7
    by_hand = (46 * 46 * 9 * 1 * 64 + 44 * 44 * 9 * 64 * 64 + 20 * 20 * 9 * 64 * 128 + 18 * 18 * 9 * 128 * 128
               + 16 * 16 * 9 * 128 * 256 + 14 * 14 * 9 * 256 * 256 + 7 * 7 * 256 * 1024 + 1024 * 7)
    assert macs.count_macs(proposed_cnn.build()) == by_hand


def test_counter_on_separable_depthwise_and_grouped_layers():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.SeparableConv2D(6, 3, padding="same")(inputs)  # 64 * (9 * 4 + 4 * 6)
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)  # 36 * 9 * 6
    x = keras.layers.Conv2D(4, 1, groups=2)(x)  # 36 * 3 * 4
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))  # 4 * 5
    assert macs.count_macs(model) == 64 * (36 + 24) + 36 * 54 + 36 * 12 + 20


def test_registry_entry_carries_the_measured_recipe():
    spec = registry.spec(compact_resnet.NAME)
    assert spec.train_defaults["augment"] and spec.train_defaults["tta"]
    assert spec.train_defaults["batch_size"] == 64 and spec.train_defaults["lr_schedule"] == "plateau"


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_output_stays_float32_under_any_policy(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = compact_resnet.build()
        assert model.layers[-1].compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
