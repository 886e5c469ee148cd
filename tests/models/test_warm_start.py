"""models/warm_start.py: where a warm start is found, that its weights are the served model's,
and the fine-tuning recipe."""

import json
import os
import shutil

import numpy as np
import pytest

from core import features
from models import warm_start
from tests.models.conftest import foreign_saved_model


def test_resolve_names_folders_and_base_paths(tmp_path):
    shipped = warm_start.resolve("shipped")
    assert os.path.dirname(shipped) == features.SHIPPED_MODEL_BASE_PATH
    assert warm_start.resolve(features.SHIPPED_MODEL_NAME) == shipped
    assert warm_start.resolve(shipped) == shipped
    base = tmp_path / "fer"
    for version in ("7", "12"):
        shutil.copytree(shipped, base / version)
    assert warm_start.resolve(str(base)) == str(base / "12")  # the newest version, by number
    (tmp_path / "empty").mkdir()
    for bad, words in ((tmp_path / "empty", "no saved_model.pb"), (tmp_path / "nope", "no such folder")):
        with pytest.raises(warm_start.WarmStartError) as raised:
            warm_start.resolve(str(bad))
        assert words in str(raised.value) and "\n" not in str(raised.value)


def test_restored_weights_are_the_served_models():
    import tensorflow as tf

    from models import augmentation

    saved = warm_start.resolve("shipped")
    name, model = warm_start.restore(saved, preferred="simple_cnn")  # the weights decide, not the preference
    assert name == features.SHIPPED_MODEL_NAME
    images = np.random.default_rng(0).integers(0, 256, (6,) + features.IMAGE_SHAPE).astype(np.uint8)
    served = tf.saved_model.load(saved).signatures["serving_default"](image=tf.constant(images))
    scaled = tf.constant(images.astype(np.float32) / 255.0)
    ours = model(scaled, training=False)
    with open(os.path.join(features.SHIPPED_MODEL_BASE_PATH, "model_card.json")) as f:
        if json.load(f)["config"]["tta"]:  # the signature averages the face and its mirror image
            ours = (ours + model(augmentation.flip_horizontally(scaled), training=False)) / 2
    np.testing.assert_allclose(ours.numpy(), served[features.SERVING_PROBABILITIES_OUTPUT].numpy(), atol=1e-5)


def test_weights_that_fit_no_model_are_one_line(tmp_path):
    with pytest.raises(warm_start.WarmStartError, match="^--warm-start .*fit none of the catalogue's models"):
        warm_start.restore(foreign_saved_model(tmp_path / "m"))


def test_recipe_freezes_batch_norm_only_and_yields_to_the_runs_values():
    _, model = warm_start.restore(warm_start.resolve("shipped"))
    frozen, trained = warm_start.freeze_batch_norm(model)
    import keras

    batch_norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert frozen == len(batch_norms) > 0 and all(not l.trainable for l in batch_norms)
    assert trained > 0 and all(l.trainable for l in model.layers
                               if l.weights and not isinstance(l, keras.layers.BatchNormalization))
    values = warm_start.fine_tune_values({"learning_rate": 3e-5, "epochs": None, "model": "x"})
    assert values["learning_rate"] == 3e-5 and values["epochs"] == warm_start.FINE_TUNE_RECIPE["epochs"]
