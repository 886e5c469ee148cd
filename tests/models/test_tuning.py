"""The Tuner's search: Table V's space, trials that train with each trial's batch size,
best values that the Trainer's config takes."""

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from models import registry, trainer, tuning


def _tiny_model():
    inputs = keras.Input((4,), name="image")
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(inputs))


@pytest.fixture
def tiny_registry(monkeypatch):
    monkeypatch.setitem(registry.MODELS, "tiny", registry.catalog.ModelEntry("tiny", None, "test model", builder=_tiny_model))


def test_search_space_is_table_v():
    hp = keras_tuner.HyperParameters()
    tuning.define_search_space(hp)
    space = {p.name: p for p in hp.space}
    assert list(space["optimizer"].values) == ["adam", "rmsprop", "sgd"]
    assert list(space["batch_size"].values) == [32, 64, 96, 128]
    assert (space["learning_rate"].min_value, space["learning_rate"].max_value) == (1e-5, 1e-2)
    assert space["learning_rate"].sampling == "log"


def test_a_resume_that_extends_the_run_keeps_the_tuner_s_config():
    """Trials run their own epochs without early stopping or export: the run's epochs, patience
    and tta stay out of the Tuner's config (and so out of its cache key)."""
    short = tuning.tuner_config({"model": "vgg_bn", "epochs": 10, "patience": 4, "tta": True, "mixup": 0.2}, 3, 1)
    longer = tuning.tuner_config({"model": "vgg_bn", "epochs": 30, "patience": 8, "tta": False, "mixup": 0.2}, 3, 1)
    assert short == longer and short[tuning.TRAIN_CONFIG_KEY] == {"model": "vgg_bn", "mixup": 0.2}


def test_tuner_config_validates_the_budget():
    config = tuning.tuner_config({"model": "vgg_bn"}, 3, 1)
    assert config == {"train_config": {"model": "vgg_bn"}, "max_trials": 3, "epochs_per_trial": 1}
    with pytest.raises(ValueError, match="at least 1 trial"):
        tuning.tuner_config({}, 0, 1)


def test_search_trains_each_trial_with_its_own_batch_size(tmp_path, tiny_registry):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") * 3
    asked = []

    def make_datasets(batch_size):
        asked.append(batch_size)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        return ds.batch(batch_size), ds.batch(batch_size)

    tuner = tuning.make_tuner(trainer.TrainConfig(model="tiny"), make_datasets, str(tmp_path), max_trials=3)
    tuner.search(epochs=1)
    trials = tuner.oracle.get_best_trials(3)
    assert len(trials) == 3
    assert sorted(asked) == sorted(t.hyperparameters.values["batch_size"] for t in trials)
    best = tuner.get_best_hyperparameters()[0].get_config()
    config = trainer.TrainConfig(model="tiny").with_hyperparameters(best)
    assert config.optimizer == best["values"]["optimizer"] and config.batch_size == best["values"]["batch_size"]
    assert config.learning_rate == pytest.approx(best["values"]["learning_rate"])
    assert trials[0].score == max(t.score for t in trials)
