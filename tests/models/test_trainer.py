"""Training functions: config, the paper's optimizer, resumable early stopping, class weights."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import trainer


def test_config_defaults_are_the_papers():
    config = trainer.TrainConfig()
    assert (config.model, config.batch_size, config.learning_rate, config.decay, config.patience, config.epochs) == (
        "proposed_cnn", 128, 1e-4, 1e-6, 4, 100)
    assert config.use_class_weights is False


def test_config_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown training options"):
        trainer.TrainConfig.from_dict({"epochz": 3})


def test_optimizer_uses_legacy_inverse_time_decay():
    optimizer = trainer.make_optimizer(trainer.TrainConfig())
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    # Keras 2's decay=1e-6: lr_t = lr_0 / (1 + decay * t)
    assert float(schedule(0)) == pytest.approx(1e-4)
    assert float(schedule(1_000_000)) == pytest.approx(1e-4 / 2)


@pytest.mark.parametrize("name, cls", [("adam", keras.optimizers.Adam), ("rmsprop", keras.optimizers.RMSprop),
                                       ("sgd", keras.optimizers.SGD)])
def test_optimizers_of_table_v(name, cls):
    optimizer = trainer.make_optimizer(trainer.TrainConfig(optimizer=name, lr_schedule="plateau", learning_rate=0.01))
    assert type(optimizer) is cls and float(optimizer.learning_rate) == pytest.approx(0.01)


def test_config_refuses_unknown_optimizer_and_schedule():
    with pytest.raises(ValueError, match="optimizer 'adagrad'"):
        trainer.TrainConfig(optimizer="adagrad")
    with pytest.raises(ValueError, match="lr_schedule 'cosine'"):
        trainer.TrainConfig.from_dict({"lr_schedule": "cosine"})


def test_tuner_hyperparameters_override_the_tuned_fields_only():
    config = trainer.TrainConfig(epochs=7).with_hyperparameters(
        {"space": [], "values": {"optimizer": "sgd", "learning_rate": 0.003, "batch_size": 32}})
    assert (config.optimizer, config.learning_rate, config.batch_size, config.epochs) == ("sgd", 0.003, 32, 7)
    assert trainer.TrainConfig().with_hyperparameters(None) == trainer.TrainConfig()


def test_plateau_schedule_lowers_the_learning_rate_when_val_accuracy_stalls(tmp_path, tiny_registry):
    assert trainer.schedule_callbacks(trainer.TrainConfig()) == []
    # 1e-5 moves the tiny model too little to change its val accuracy: a plateau from epoch 1
    config = trainer.TrainConfig(model="tiny", epochs=5, patience=10, learning_rate=1e-5, lr_schedule="plateau")
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert len({h["val_accuracy"] for h in summary["history"]}) == 1
    # the logged rate is the one each epoch trained with: halved after epochs 3 and 5
    rates = [h["learning_rate"] for h in summary["history"]]
    assert rates == pytest.approx([1e-5, 1e-5, 1e-5, 5e-6, 5e-6])


def _tiny_model():
    inputs = keras.Input((4,), name="image")
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(inputs))


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") * 3  # learnable: class 0 or 3
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


@pytest.fixture
def tiny_registry(monkeypatch):
    monkeypatch.setitem(trainer.registry.MODELS, "tiny", trainer.registry.ModelSpec("tiny", _tiny_model, "test model"))


def test_train_checkpoints_each_epoch_and_stops_early(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=30, patience=2, learning_rate=0.0)  # lr 0: never improves
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is True and summary["best_epoch"] == 1
    state = json.load(open(tmp_path / "ckpt" / trainer.CHECKPOINT_STATE_FILE))
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert os.path.exists(tmp_path / "ckpt" / trainer.LAST_MODEL_FILE)
    assert os.listdir(tmp_path / "logs")  # TensorBoard events


def test_resume_continues_from_the_last_epoch(tmp_path, tiny_registry):
    first = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    resumed = trainer.TrainConfig(model="tiny", epochs=4, learning_rate=0.01, resume=True)
    model, summary = trainer.train(resumed, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    assert summary["resumed_from_epoch"] == 2
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    assert summary["epochs_run"] == 4


def test_best_weights_are_restored(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=3, learning_rate=0.05, patience=10)
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    best = keras.models.clone_model(model)
    best.load_weights(str(tmp_path / "c" / trainer.BEST_WEIGHTS_FILE))
    for a, b in zip(model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_class_weights_as_the_executor_hands_them_over(tmp_path, tiny_registry, capsys):
    weights = {str(i): 1.0 + i for i in range(7)}  # as JSON gives them: string keys
    config = trainer.TrainConfig(model="tiny", epochs=1, use_class_weights=True, class_weights=weights)
    trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert "balanced class weights: {0: 1.0, 1: 2.0," in capsys.readouterr().out
    with pytest.raises(ValueError, match="no class weights"):
        trainer.train(trainer.TrainConfig(model="tiny", epochs=1, use_class_weights=True), _data(), _data(),
                      str(tmp_path / "l2"), str(tmp_path / "c2"))


def test_a_mixed_bfloat16_model_is_exported_as_float32_with_the_same_weights():
    import keras
    import numpy as np

    from models import trainer

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = trainer.registry.build("compact_resnet")
    assert mixed.layers[2].compute_dtype == "bfloat16"
    exported = trainer.as_float32(mixed, "compact_resnet")
    assert keras.mixed_precision.global_policy().name == "float32"
    assert all(layer.dtype_policy.name == "float32" for layer in exported.layers)
    for a, b in zip(mixed.get_weights(), exported.get_weights()):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(exported.predict(images, verbose=0), mixed.predict(images, verbose=0), atol=0.05)


def test_precision_must_be_a_known_policy():
    import pytest

    from models import trainer

    with pytest.raises(ValueError, match="precision 'float16'"):
        trainer.TrainConfig(precision="float16")


def test_each_epoch_prints_time_left_and_the_best_so_far_and_tensorboard(tmp_path, tiny_registry, capsys):
    config = trainer.TrainConfig(model="tiny", epochs=3, patience=5, batch_size=8)
    trainer.train(config, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    out = capsys.readouterr().out
    assert f"TensorBoard: tensorboard --logdir {tmp_path / 'logs'}" in out
    lines = [line for line in out.splitlines() if line.startswith("[Trainer] epoch ")]
    assert [line.split(":")[0] for line in lines] == [f"[Trainer] epoch {i}/3" for i in (1, 2, 3)]
    assert all("best val_accuracy" in line and "elapsed" in line for line in lines)
    assert "left" in lines[0] and "left" not in lines[-1]  # the last epoch has none left
