"""Training functions: config, the paper's optimizer, resumable early stopping, class weights."""

import dataclasses
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
    with pytest.raises(ValueError, match="lr_schedule 'linear'"):
        trainer.TrainConfig.from_dict({"lr_schedule": "linear"})


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
    monkeypatch.setitem(trainer.registry.MODELS, "tiny", trainer.registry.catalog.ModelEntry("tiny", None, "test model", builder=_tiny_model))


def test_train_checkpoints_each_epoch_and_stops_early(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=30, patience=2, learning_rate=0.0)  # lr 0: never improves
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is True and summary["best_epoch"] == 1
    state = json.load(open(tmp_path / "ckpt" / trainer.CHECKPOINT_STATE_FILE))
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert os.path.exists(tmp_path / "ckpt" / state["last_model"]) and state["last_model"] == "last-0003.keras"
    # each epoch's checkpoint replaces the previous one: no stale files pile up
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["best-0001.weights.h5", "last-0003.keras", "state.json"]
    assert os.listdir(tmp_path / "logs")  # TensorBoard events


def test_resume_continues_from_the_last_epoch(tmp_path, tiny_registry):
    first = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    resumed = trainer.TrainConfig(model="tiny", epochs=4, learning_rate=0.01, resume=True)
    model, summary = trainer.train(resumed, _data(), _data(seed=1), str(tmp_path / "logs"), str(tmp_path / "ckpt"))
    assert summary["resumed_from_epoch"] == 2
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    assert summary["epochs_run"] == 4


def test_callbacks_run_after_the_checkpoint_and_may_stop_the_run(tmp_path, tiny_registry):
    checkpointed = []

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # the trainer's checkpoint of this epoch is on disk by now
            checkpointed.append(json.load(open(tmp_path / "c" / trainer.CHECKPOINT_STATE_FILE))["epoch"])
            self.model.stop_training = epoch + 1 == 2

    config = trainer.TrainConfig(model="tiny", epochs=10, patience=10, learning_rate=0.01)
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"),
                                   callbacks=[StopAfterTwo()])
    assert summary["epochs_run"] == 2 and [h["epoch"] for h in summary["history"]] == [1, 2]
    assert checkpointed == [1, 2]


def test_best_weights_are_restored(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=3, learning_rate=0.05, patience=10)
    model, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    best = keras.models.clone_model(model)
    best.load_weights(trainer.checkpoint_file(str(tmp_path / "c"), "best_weights"))
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


# --- The field's levers: Nesterov SGD, cosine with warm-up, label smoothing, erasing, mixup ---

def test_nesterov_is_sgd_with_nesterov_momentum():
    optimizer = trainer.make_optimizer(trainer.TrainConfig(optimizer="nesterov", lr_schedule="cosine", learning_rate=0.1))
    assert type(optimizer) is keras.optimizers.SGD and optimizer.nesterov is True
    assert optimizer.momentum == pytest.approx(trainer.NESTEROV_MOMENTUM)


def test_cosine_warms_up_linearly_then_decays_to_zero_at_the_last_epoch():
    config = trainer.TrainConfig(lr_schedule="cosine", learning_rate=0.1, warmup_epochs=2, epochs=12)
    rates = [trainer.cosine_learning_rate(epoch, config) for epoch in range(12)]
    assert rates[:3] == pytest.approx([0.05, 0.1, 0.1])
    assert rates[7] == pytest.approx(0.05)  # halfway through the 10 decay epochs
    assert all(a > b for a, b in zip(rates[2:], rates[3:])) and 0 < rates[-1] < 0.003


def test_a_patience_shorter_than_a_cosine_schedule_is_pointed_out():
    cosine = dict(lr_schedule="cosine", learning_rate=0.1, epochs=300)
    assert trainer.cosine_cut_short(trainer.TrainConfig(**cosine, patience=300)) is None
    assert trainer.cosine_cut_short(trainer.TrainConfig(**cosine, patience=299)) is None  # first stop: epoch 300
    assert trainer.cosine_cut_short(trainer.TrainConfig(**cosine, patience=298)) is not None
    assert trainer.cosine_cut_short(trainer.TrainConfig(lr_schedule="plateau", epochs=300, patience=8)) is None
    assert trainer.cosine_cut_short(trainer.TrainConfig(**cosine, patience=100)) == (
        "[Trainer] note: --patience 100 can stop this cosine schedule before its last epoch (300), while its "
        "learning rate is still high; --patience 300 trains it to the end")


def test_training_prints_the_note_on_a_cut_short_cosine_schedule(tmp_path, tiny_registry, capsys):
    config = trainer.TrainConfig(model="tiny", epochs=3, patience=1, learning_rate=0.02, lr_schedule="cosine",
                                 optimizer="nesterov")
    trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert "[Trainer] note: --patience 1 can stop this cosine schedule before its last epoch (3)" in (
        capsys.readouterr().out)


def test_the_shipped_recipe_trains_its_whole_cosine_schedule():
    shipped = trainer.TrainConfig.from_dict({"model": "compact_resnet_v2"})
    assert shipped.lr_schedule == "cosine" and shipped.patience == shipped.epochs
    assert trainer.cosine_cut_short(shipped) is None


def test_cosine_schedule_sets_each_epochs_rate(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=4, patience=10, learning_rate=0.02, lr_schedule="cosine",
                                 warmup_epochs=1, optimizer="nesterov")
    _, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    rates = [h["learning_rate"] for h in summary["history"]]
    assert rates == pytest.approx([trainer.cosine_learning_rate(e, config) for e in range(4)])


def test_soft_label_recipes_train_on_one_hot_labels_with_smoothing(tmp_path, tiny_registry):
    config = trainer.TrainConfig(model="tiny", epochs=1, label_smoothing=0.1, learning_rate=0.01)
    assert config.soft_labels and not trainer.TrainConfig().soft_labels
    model = trainer.compile_model(trainer.registry.build("tiny"), config)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    images, labels = next(iter(trainer.prepare_batches(_data(), config, training=False)))
    assert labels.shape == (16, 7) and set(np.argmax(labels, 1)) <= {0, 3}
    _, summary = trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert 0 <= summary["history"][0]["val_accuracy"] <= 1


def test_config_refuses_out_of_range_levers():
    for values in ({"label_smoothing": 1.0}, {"random_erasing": -0.1}, {"mixup": -1.0}, {"warmup_epochs": -1}):
        with pytest.raises(ValueError, match="must be"):
            trainer.TrainConfig.from_dict(values)


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    from models import augmentation

    images = tf.zeros([64, 48, 48, 1])
    erased = augmentation.random_erasing(images, probability=0.5).numpy()
    changed = (erased != 0).reshape(64, -1).sum(1)
    assert 10 < (changed > 0).sum() < 54  # about half the images
    area = changed[changed > 0] / (48 * 48)
    assert area.max() <= 0.26
    kept = augmentation.random_erasing(images, probability=0.0).numpy()
    assert not kept.any()
    for i in np.flatnonzero(changed):  # the erased pixels form one axis-aligned box
        rows, cols = np.nonzero(erased[i, :, :, 0])
        box = erased[i, rows.min():rows.max() + 1, cols.min():cols.max() + 1, 0]
        assert (box != 0).mean() > 0.99


def test_mixup_blends_images_and_labels_with_the_same_weight():
    from models import augmentation

    images = tf.reshape(tf.range(8, dtype=tf.float32), [8, 1, 1, 1]) * tf.ones([8, 4, 4, 1])
    labels = tf.one_hot(tf.range(8) % 7, 7)
    mixed, soft = augmentation.mixup(images, labels, alpha=0.4)
    soft = soft.numpy()
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    assert (soft.max(1) >= 0.5 - 1e-6).all()
    for i in range(8):  # an image's value is the same blend of its own and its partner's
        own = soft[i, i % 7]
        partner_value = (mixed[i, 0, 0, 0].numpy() - own * i) / (1 - own) if own < 1 else i
        assert 0 - 1e-4 <= partner_value <= 7 + 1e-4


# --- Resume: every piece of training state survives ---

def test_resume_restores_optimizer_schedule_counters_best_weights_and_epoch(tmp_path, tiny_registry, capsys):
    ckpt = str(tmp_path / "ckpt")
    # lr 1e-5 on the tiny model: val accuracy plateaus, so the plateau schedule halves the rate
    first = trainer.TrainConfig(model="tiny", epochs=4, patience=10, learning_rate=1e-5, lr_schedule="plateau")
    model, _ = trainer.train(first, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    saved = json.load(open(os.path.join(ckpt, trainer.CHECKPOINT_STATE_FILE)))
    saved_model = keras.models.load_model(os.path.join(ckpt, saved["last_model"]))
    assert saved["callbacks"]["plateau"]["wait"] == 1 and saved["wait"] == 3

    stopper = trainer.ResumableEarlyStopping(ckpt, patience=10, stateful=trainer.schedule_callbacks(
        dataclasses.replace(first, resume=True)))
    assert stopper.load()
    plateau = stopper.stateful[0]
    plateau.on_train_begin()  # Keras resets the counters here; the restored ones must win
    assert (plateau.wait, plateau.best, plateau.cooldown_counter) == (
        saved["callbacks"]["plateau"]["wait"], saved["callbacks"]["plateau"]["best"], 0)
    assert (stopper.state["epoch"], stopper.state["wait"], stopper.state["best"]) == (4, 3, saved["best"])
    assert int(saved_model.optimizer.iterations) == 4 * 4  # 4 epochs of 4 batches
    assert float(saved_model.optimizer.learning_rate) == pytest.approx(5e-6)  # halved once, after epoch 3

    resumed = dataclasses.replace(first, epochs=6, resume=True)
    model, summary = trainer.train(resumed, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    assert "resuming tiny from epoch 4" in capsys.readouterr().out
    assert summary["resumed_from_epoch"] == 4 and summary["epochs_run"] == 6 and summary["pieces"] == 2
    rates = [h["learning_rate"] for h in summary["history"]]
    # the restored plateau counter (wait 1) halves again after epoch 5, as an unbroken run would
    assert rates == pytest.approx([1e-5, 1e-5, 1e-5, 5e-6, 5e-6, 2.5e-6])
    assert summary["train_seconds_total"] == pytest.approx(sum(h["seconds"] for h in summary["history"]))
    best = keras.models.clone_model(model)
    best.load_weights(os.path.join(ckpt, "best-0001.weights.h5"))  # val accuracy never rose after epoch 1
    for a, b in zip(model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_resume_with_another_recipe_is_one_line_naming_each_change(tmp_path, tiny_registry, capsys):
    """A run resumed with newer code whose catalogue recipe changed, or with other flags, would
    train its remaining epochs on another recipe: refused, naming what differs."""
    ckpt = str(tmp_path / "ckpt")
    first = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01, label_smoothing=0.1, patience=10)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    state = json.load(open(os.path.join(ckpt, trainer.CHECKPOINT_STATE_FILE)))
    assert state["recipe"]["mixup"] == 0.0 and state["recipe"]["learning_rate"] == 0.01
    assert "epochs" not in state["recipe"] and state["planned"] == {"epochs": 2, "patience": 10}
    for changed, words in (({"mixup": 0.2}, "--mixup 0.0 (this run: --mixup 0.2)"),
                           ({"learning_rate": 0.05, "batch_size": 64, "seed": 1},
                            "--batch-size 128 (this run: --batch-size 64), --learning-rate 0.01 (this run: "
                            "--learning-rate 0.05), seed 42 (this run: seed 1)")):
        again = dataclasses.replace(first, epochs=3, resume=True, **changed)
        with pytest.raises(ValueError) as raised:
            trainer.train(again, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
        message = str(raised.value)
        assert message.startswith("--resume: ") and words in message and "\n" not in message
    assert json.load(open(os.path.join(ckpt, trainer.CHECKPOINT_STATE_FILE)))["epoch"] == 2  # nothing trained
    capsys.readouterr()
    _, summary = trainer.train(dataclasses.replace(first, epochs=3, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 3
    out = capsys.readouterr().out
    assert "resuming tiny from epoch 2" in out and "[Trainer] --epochs 3: the checkpoint's run was planned with 2" in out


def test_a_resume_after_the_catalogue_s_recipe_changed_is_refused(tmp_path, tiny_registry, monkeypatch):
    """The same command (`--model tiny --resume`) after newer code changed the model's catalogue
    recipe, as compact_resnet_v2's changed from version 2's to version 3's (mixup 0 -> 0.2,
    100 -> 200 epochs under the cosine schedule)."""
    class StopAfterOne(keras.callbacks.Callback):  # the run is stopped after epoch 1
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    ckpt = str(tmp_path / "ckpt")
    recipe = {"lr_schedule": "cosine", "learning_rate": 0.01, "label_smoothing": 0.1, "epochs": 3}
    entry = trainer.registry.catalog.ModelEntry("tiny", None, "test model", recipe, builder=_tiny_model)
    monkeypatch.setitem(trainer.registry.catalog.ENTRIES, "tiny", entry)
    trainer.train(trainer.TrainConfig.from_dict({"model": "tiny"}), _data(), _data(seed=1), str(tmp_path / "l"), ckpt,
                  callbacks=[StopAfterOne()])
    newer = dataclasses.replace(entry, train_defaults={**recipe, "mixup": 0.2, "epochs": 6})
    monkeypatch.setitem(trainer.registry.catalog.ENTRIES, "tiny", newer)
    with pytest.raises(ValueError, match=r"--mixup 0\.0 \(this run: --mixup 0\.2\), --epochs 3 \(this run: --epochs 6\)"):
        trainer.train(trainer.TrainConfig.from_dict({"model": "tiny", "resume": True}), _data(), _data(seed=1),
                      str(tmp_path / "l"), ckpt)
    _, summary = trainer.train(trainer.TrainConfig.from_dict({"model": "tiny", "resume": True, "mixup": 0.0,
                                                              "epochs": 3}), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)  # the checkpoint's recipe given back: it goes on
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 3 and summary["pieces"] == 2


def test_a_resume_names_flags_as_given_and_the_tuner_s_values_as_its(tmp_path, tiny_registry):
    ckpt = str(tmp_path / "ckpt")
    first = trainer.TrainConfig(model="tiny", epochs=1, learning_rate=0.01)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    again = dataclasses.replace(first, epochs=2, resume=True, augment=True, use_class_weights=True,
                                class_weights={0: 1.0}).with_hyperparameters({"values": {"learning_rate": 0.02}})
    with pytest.raises(ValueError) as raised:
        trainer.train(again, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    assert ("--learning-rate 0.01 (this run: --learning-rate 0.02 (the Tuner's best)), --no-augment (this run: "
            "--augment), no --class-weights (this run: --class-weights)") in str(raised.value)
    assert "resume without --tune, giving the checkpoint's values as flags" in str(raised.value)
    untuned = dataclasses.replace(first, epochs=2, resume=True, augment=True)
    with pytest.raises(ValueError, match="resume with the checkpoint's settings"):
        trainer.train(untuned, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)


def test_a_run_that_stopped_early_trains_on_when_resumed_with_a_longer_patience(tmp_path, tiny_registry, capsys):
    ckpt = str(tmp_path / "ckpt")
    frozen = trainer.TrainConfig(model="tiny", epochs=6, learning_rate=0.0, patience=1)  # no new best after epoch 1
    _, summary = trainer.train(frozen, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    assert summary["stopped_early"] and summary["epochs_run"] == 2
    capsys.readouterr()
    _, summary = trainer.train(dataclasses.replace(frozen, patience=3, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)
    assert "[Trainer] the run had stopped early after 1 epoch(s) without a new best; with --patience 3 it trains on" in (
        capsys.readouterr().out)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 4 and summary["stopped_early"]
    _, summary = trainer.train(dataclasses.replace(frozen, patience=3, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)
    assert summary["epochs_run"] == 4 and "already finished" in capsys.readouterr().out  # the same patience: done


def test_under_the_cosine_schedule_a_resume_keeps_the_epochs(tmp_path, tiny_registry, capsys):
    """The cosine curve ends at the last epoch: another --epochs would bend the rest of it."""
    ckpt = str(tmp_path / "ckpt")
    first = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01, lr_schedule="cosine", patience=10)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)
    with pytest.raises(ValueError, match=r"--epochs 2 \(this run: --epochs 3\)"):
        trainer.train(dataclasses.replace(first, epochs=3, resume=True), _data(), _data(seed=1),
                      str(tmp_path / "l"), ckpt)
    capsys.readouterr()
    _, summary = trainer.train(dataclasses.replace(first, patience=5, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)
    assert summary["epochs_run"] == 2
    assert "[Trainer] --patience 5: the checkpoint's run was planned with 10" in capsys.readouterr().out


def test_a_checkpoint_without_a_recorded_recipe_resumes_unchecked(tmp_path, tiny_registry):
    ckpt = tmp_path / "ckpt"
    first = trainer.TrainConfig(model="tiny", epochs=1, learning_rate=0.01)
    trainer.train(first, _data(), _data(seed=1), str(tmp_path / "l"), str(ckpt))
    state = json.load(open(ckpt / trainer.CHECKPOINT_STATE_FILE))
    for key in ("recipe", "planned"):
        state.pop(key)
    (ckpt / trainer.CHECKPOINT_STATE_FILE).write_text(json.dumps(state))
    _, summary = trainer.train(dataclasses.replace(first, epochs=2, learning_rate=0.02, resume=True), _data(),
                               _data(seed=1), str(tmp_path / "l"), str(ckpt))
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 2


def test_a_kill_while_a_checkpoint_is_written_leaves_the_previous_one_loadable(tmp_path, tiny_registry, monkeypatch):
    ckpt = str(tmp_path / "ckpt")
    config = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01, patience=10)
    trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), ckpt)

    def dies_half_way(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(keras.Model, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(dataclasses.replace(config, epochs=3, resume=True), _data(), _data(seed=1),
                      str(tmp_path / "l"), ckpt)
    monkeypatch.undo()
    state = json.load(open(os.path.join(ckpt, trainer.CHECKPOINT_STATE_FILE)))
    assert state["epoch"] == 2 and state["last_model"] == "last-0002.keras"
    keras.models.load_model(os.path.join(ckpt, state["last_model"]))  # whole
    _, summary = trainer.train(dataclasses.replace(config, epochs=3, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), ckpt)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 3


_KILLABLE_RUN = r"""
import json, sys, time
import numpy as np, tensorflow as tf, keras
from models import trainer

def slow_model():
    inputs = keras.Input((4,), name="image")
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(inputs))

trainer.registry.MODELS["tiny"] = trainer.registry.catalog.ModelEntry("tiny", None, "test model", builder=slow_model)
rng = np.random.default_rng(0)
x = rng.normal(size=(160, 4)).astype("float32"); y = (x[:, 0] > 0).astype("int64") * 3
def slow(a, b):  # 10 batches of 40 ms: an epoch takes about 0.4 s, so a kill lands mid-epoch
    time.sleep(0.04)
    return a, b
train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(
    lambda a, b: tf.py_function(slow, [a, b], [tf.float32, tf.int64]))
train = train.map(lambda a, b: (tf.ensure_shape(a, [None, 4]), tf.ensure_shape(b, [None])))
valid = tf.data.Dataset.from_tensor_slices((x, y)).batch(80)
config = trainer.TrainConfig(model="tiny", epochs=12, patience=100, learning_rate=0.01, optimizer="nesterov",
                             lr_schedule="cosine", warmup_epochs=2, resume=sys.argv[2] == "resume")
model, summary = trainer.train(config, train, valid, sys.argv[1] + "/logs", sys.argv[1] + "/ckpt")
json.dump({k: summary[k] for k in ("epochs_run", "resumed_from_epoch", "pieces", "history")},
          open(sys.argv[1] + "/summary.json", "w"))
"""


def test_a_run_killed_mid_epoch_resumes_to_the_end(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(_KILLABLE_RUN)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}
    state_path = tmp_path / "ckpt" / trainer.CHECKPOINT_STATE_FILE
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path), "fresh"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and run.poll() is None:
        if state_path.exists() and json.loads(state_path.read_text())["epoch"] >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.15)  # into the next epoch
    assert run.poll() is None, run.stdout.read().decode()[-2000:]
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_at = json.loads(state_path.read_text())["epoch"]
    assert 3 <= killed_at < 12

    resumed = subprocess.run([sys.executable, str(script), str(tmp_path), "resume"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resuming tiny from epoch {killed_at}" in resumed.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == killed_at and summary["epochs_run"] == 12 and summary["pieces"] == 2
    assert [h["epoch"] for h in summary["history"]] == list(range(1, 13))
    config = trainer.TrainConfig(epochs=12, learning_rate=0.01, lr_schedule="cosine", warmup_epochs=2)
    assert [h["learning_rate"] for h in summary["history"]] == pytest.approx(
        [trainer.cosine_learning_rate(e, config) for e in range(12)], rel=1e-5)


def test_a_checkpoint_of_the_earlier_format_resumes(tmp_path, tiny_registry):
    """Checkpoints written before the files carried their epoch (last.keras, best.weights.h5,
    a state without file names) go on from their epoch."""
    ckpt = tmp_path / "ckpt"
    config = trainer.TrainConfig(model="tiny", epochs=2, learning_rate=0.01, patience=10)
    trainer.train(config, _data(), _data(seed=1), str(tmp_path / "l"), str(ckpt))
    state = json.load(open(ckpt / trainer.CHECKPOINT_STATE_FILE))
    os.rename(ckpt / state.pop("last_model"), ckpt / trainer.LEGACY_LAST_MODEL_FILE)
    os.rename(ckpt / state.pop("best_weights"), ckpt / trainer.LEGACY_BEST_WEIGHTS_FILE)
    for key in ("pieces", "callbacks"):
        state.pop(key)
    (ckpt / trainer.CHECKPOINT_STATE_FILE).write_text(json.dumps(state))
    _, summary = trainer.train(dataclasses.replace(config, epochs=3, resume=True), _data(), _data(seed=1),
                               str(tmp_path / "l"), str(ckpt))
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 3
    assert not (ckpt / trainer.LEGACY_LAST_MODEL_FILE).exists()  # replaced by the epoch-named file
