"""models/distillation.py and the Trainer's --teacher: the teacher's probabilities are the served
model's, the targets blend labels and teacher as the config says, and only training batches get
them."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from core import features
from models import augmentation, distillation, trainer, warm_start
from models.train_config import TrainConfig
from tests.models.conftest import foreign_saved_model


@pytest.fixture(scope="module")
def shipped():
    return warm_start.resolve("shipped")


def _faces(n=24, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n,) + features.IMAGE_SHAPE).astype(np.uint8)
    return images, rng.integers(0, features.NUM_CLASSES, n).astype(np.int64)


def _batches(n=24, seed=0, batch=8):
    images, labels = _faces(n, seed)
    return tf.data.Dataset.from_tensor_slices((images.astype(np.float32) / 255.0, labels)).batch(batch)


def test_a_members_probabilities_are_what_its_serving_signature_answers(shipped):
    [member] = distillation.load_teacher([shipped])
    with open(os.path.join(features.SHIPPED_MODEL_BASE_PATH, "model_card.json")) as f:
        card = json.load(f)
    assert member.name == features.SHIPPED_MODEL_NAME and member.tta == bool(card["config"]["tta"])
    assert member.model.trainable is False
    images, _ = _faces(6)
    served = tf.saved_model.load(shipped).signatures["serving_default"](image=tf.constant(images))
    ours = distillation.teacher_probabilities([member], tf.constant(images.astype(np.float32) / 255.0))
    np.testing.assert_allclose(ours.numpy(), served[features.SERVING_PROBABILITIES_OUTPUT].numpy(), atol=1e-5)


def test_members_are_averaged_and_a_tta_member_sees_the_mirror_image(shipped):
    [member] = distillation.load_teacher([shipped])
    images = tf.constant(_faces(4)[0].astype(np.float32) / 255.0)
    plain = member.model(images, training=False).numpy()
    mirrored = member.model(augmentation.flip_horizontally(images), training=False).numpy()
    with_tta = distillation.Member(member.name, member.model, True, shipped)
    without = distillation.Member(member.name, member.model, False, shipped)
    np.testing.assert_allclose(distillation.teacher_probabilities([without], images).numpy(), plain, atol=1e-6)
    np.testing.assert_allclose(distillation.teacher_probabilities([with_tta], images).numpy(),
                               (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(distillation.teacher_probabilities([without, with_tta], images).numpy(),
                               (plain + (plain + mirrored) / 2) / 2, atol=1e-6)


def test_temperature_softens_and_keeps_the_ranking():
    p = tf.constant([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    assert distillation.soften(p, 1.0) is p
    soft = distillation.soften(p, 2.0).numpy()
    expected = np.sqrt(p.numpy()) / np.sqrt(p.numpy()).sum(axis=1, keepdims=True)  # p ** (1/2), renormalised
    np.testing.assert_allclose(soft, expected, atol=1e-6)
    assert (soft.max(axis=1) < p.numpy().max(axis=1)).all()
    assert (soft.argmax(axis=1) == p.numpy().argmax(axis=1)).all()


def test_targets_blend_labels_and_teacher_by_alpha():
    labels, teacher = tf.constant([[1.0, 0.0]]), tf.constant([[0.2, 0.8]])
    np.testing.assert_allclose(distillation.blend_targets(labels, teacher, 0.25).numpy(), [[0.8, 0.2]], atol=1e-6)
    np.testing.assert_allclose(distillation.blend_targets(labels, teacher, 0.0).numpy(), labels.numpy())
    np.testing.assert_allclose(distillation.blend_targets(labels, teacher, 1.0).numpy(), teacher.numpy())


def test_only_training_batches_get_the_teachers_targets(shipped):
    teacher = distillation.load_teacher([shipped])
    config = TrainConfig(model=features.SHIPPED_MODEL_NAME, teacher_dirs=[shipped], distill_alpha=0.3,
                         distill_temperature=2.0)
    assert config.soft_labels  # the targets are distributions
    images, labels = next(iter(trainer.prepare_batches(_batches(), config, training=True, teacher=teacher)))
    expected = 0.7 * tf.one_hot(_faces()[1][:8], features.NUM_CLASSES) + 0.3 * distillation.teacher_probabilities(
        teacher, images, 2.0)
    np.testing.assert_allclose(labels.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, atol=1e-5)
    _, valid_labels = next(iter(trainer.prepare_batches(_batches(), config, training=False, teacher=teacher)))
    np.testing.assert_array_equal(valid_labels.numpy(), tf.one_hot(_faces()[1][:8], features.NUM_CLASSES).numpy())


def _tiny_student():
    inputs = keras.Input(features.IMAGE_SHAPE, name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
    return keras.Model(inputs, keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(x))


def test_train_distils_and_reports_the_teachers_valid_accuracy(tmp_path, shipped, monkeypatch, capsys):
    monkeypatch.setitem(trainer.registry.MODELS, "tiny48", trainer.registry.catalog.ModelEntry(
        "tiny48", None, "test model", builder=_tiny_student))
    config = TrainConfig(model="tiny48", epochs=1, learning_rate=0.01, teacher_dirs=[shipped, shipped])
    _, summary = trainer.train(config, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    teacher = distillation.load_teacher([shipped])
    assert summary["teacher_val_accuracy"] == pytest.approx(distillation.ensemble_accuracy(teacher, _batches(seed=1)))
    assert [m["model"] for m in summary["teacher"]] == [features.SHIPPED_MODEL_NAME] * 2
    out = capsys.readouterr().out
    assert "distilling from a teacher of 2 model(s)" in out and "0.5 x labels + 0.5 x teacher at temperature 1" in out


def test_config_refuses_alpha_outside_0_1_and_a_temperature_of_0():
    for values in ({"distill_alpha": 1.5}, {"distill_alpha": -0.1}, {"distill_temperature": 0.0}):
        with pytest.raises(ValueError, match="distill_alpha .* must be in \\[0, 1\\]"):
            TrainConfig(**values)


def test_a_teacher_that_is_no_model_of_ours_is_one_line_naming_the_flag(tmp_path):
    with pytest.raises(warm_start.WarmStartError, match="^--teacher .*fit none of the catalogue's models"):
        distillation.load_teacher([foreign_saved_model(tmp_path / "m")])


def test_a_teacher_loaded_under_bf16_computes_in_bf16_and_leaves_the_policy_as_it_was(shipped):
    [plain] = distillation.load_teacher([shipped])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        [member] = distillation.load_teacher([shipped])
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in member.model.layers)
        images = tf.constant(_faces(8)[0].astype(np.float32) / 255.0)
        np.testing.assert_allclose(distillation.teacher_probabilities([member], images).numpy(),
                                   distillation.teacher_probabilities([plain], images).numpy(), atol=0.05)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("tta", [False, True])
def test_whether_a_member_has_flip_tta_is_read_from_its_serving_signature(transform_output_dir, tmp_path, tta):
    import tensorflow_transform as tft

    from models import export

    def dense():  # Flatten + Dense sees where pixels are, so a mirror image scores differently
        inputs = keras.Input(features.IMAGE_SHAPE, name=features.IMAGE_KEY)
        return keras.Model(inputs, keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(
            keras.layers.Flatten()(inputs)))

    model = dense()
    path = export.export_serving_model(model, tft.TFTransformOutput(transform_output_dir[0]), str(tmp_path / "1"),
                                       tta=tta)
    assert distillation.served_with_tta(path, model) is tta
    with pytest.raises(warm_start.WarmStartError, match="answers neither as its weights do"):
        distillation.served_with_tta(path, dense())  # other weights: the signature is not this model's


def test_the_training_input_blends_the_teachers_targets(tmp_path, shipped, monkeypatch):
    monkeypatch.setitem(trainer.registry.MODELS, "tiny48", trainer.registry.catalog.ModelEntry(
        "tiny48", None, "test model", builder=_tiny_student))
    blended = []
    original = distillation.blend_targets
    monkeypatch.setattr(distillation, "blend_targets", lambda *a: blended.append(a) or original(*a))
    config = TrainConfig(model="tiny48", epochs=1, learning_rate=0.01, teacher_dirs=[shipped])
    trainer.train(config, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert blended  # traced into the training input pipeline


def test_a_resume_that_changes_the_distillation_is_one_line(tmp_path, shipped, monkeypatch):
    monkeypatch.setitem(trainer.registry.MODELS, "tiny48", trainer.registry.catalog.ModelEntry(
        "tiny48", None, "test model", builder=_tiny_student))
    first = TrainConfig(model="tiny48", epochs=1, learning_rate=0.01, teacher_dirs=[shipped], distill_alpha=0.3)
    trainer.train(first, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    state = json.load(open(tmp_path / "c" / trainer.CHECKPOINT_STATE_FILE))
    [member] = state["targets"]["teacher"].pop("members")
    assert state["targets"] == {"soft_labels": True, "teacher": {
        "models": [features.SHIPPED_MODEL_NAME], "distill_alpha": 0.3, "distill_temperature": 1.0}}
    assert member["name"] == features.SHIPPED_MODEL_NAME and len(member["weights_sha256"]) == 64
    for changed, words in (({"teacher_dirs": None}, "trained on one-hot targets"),
                           ({"teacher_dirs": None, "label_smoothing": 0.1}, "with a teacher"),
                           ({"distill_alpha": 0.5}, "distill_alpha 0.3")):
        again = TrainConfig(**{**dataclasses_values(first), "epochs": 2, "resume": True, **changed})
        with pytest.raises(ValueError) as raised:
            trainer.train(again, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
        assert str(raised.value).startswith("--resume: ") and words in str(raised.value)
        assert "\n" not in str(raised.value)
    swapped = TrainConfig(**{**dataclasses_values(first), "epochs": 2, "resume": True,
                             "teacher_dirs": [shipped, shipped]})
    with pytest.raises(ValueError) as raised:
        trainer.train(swapped, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert str(raised.value).startswith("--resume: ") and "\n" not in str(raised.value)
    assert str(raised.value).count(f"{features.SHIPPED_MODEL_NAME} (") == 3  # one recorded, two now
    moved = str(tmp_path / "moved")  # the same teacher in another folder (a pipeline's artifact)
    shutil.copytree(shipped, moved)
    same = TrainConfig(**{**dataclasses_values(first), "epochs": 2, "resume": True, "teacher_dirs": [moved]})
    _, summary = trainer.train(same, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 2


def dataclasses_values(config):
    import dataclasses

    return dataclasses.asdict(config)


def test_a_resume_with_other_weights_of_the_same_architecture_is_refused(tmp_path, shipped, monkeypatch):
    """Two versions of the shipped architecture are two teachers: compared by their weights."""
    monkeypatch.setitem(trainer.registry.MODELS, "tiny48", trainer.registry.catalog.ModelEntry(
        "tiny48", None, "test model", builder=_tiny_student))
    first = TrainConfig(model="tiny48", epochs=1, learning_rate=0.01, teacher_dirs=[shipped])
    trainer.train(first, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))
    [member] = distillation.load_teacher([shipped])
    member.model.set_weights([w + 0.01 for w in member.model.get_weights()])
    monkeypatch.setattr(distillation, "load_teacher", lambda dirs: [member])
    again = TrainConfig(**{**dataclasses_values(first), "epochs": 2, "resume": True})
    with pytest.raises(ValueError, match="was distilled from a teacher of"):
        trainer.train(again, _batches(), _batches(seed=1), str(tmp_path / "l"), str(tmp_path / "c"))


def test_a_checkpoint_that_recorded_architectures_only_is_compared_by_them_in_any_order():
    import types

    state = {"targets": {"teacher": {"models": ["compact_resnet", "compact_resnet_v2"]}}}
    members = [types.SimpleNamespace(name=name) for name in ("compact_resnet_v2", "compact_resnet")]
    trainer.check_same_teacher(state, members, "ckpt")
    with pytest.raises(ValueError, match="this run's --teacher is compact_resnet_v2$|this run's --teacher is "
                                         "compact_resnet_v2:"):
        trainer.check_same_teacher(state, members[:1], "ckpt")
    trainer.check_same_teacher({"targets": {"soft_labels": True}}, members, "ckpt")  # no teacher recorded


def test_recorded_members_match_in_any_order_and_differ_by_tta(monkeypatch):
    import types

    def record(member):
        return {"name": member.name, "tta": member.tta, "weights_sha256": member.sha}

    monkeypatch.setattr(distillation, "member_record", record)
    v1 = types.SimpleNamespace(name="compact_resnet", tta=True, sha="a" * 64)
    v2 = types.SimpleNamespace(name="compact_resnet_v2", tta=False, sha="b" * 64)
    state = {"targets": {"teacher": {"models": ["compact_resnet", "compact_resnet_v2"],
                                     "members": [record(v1), record(v2)]}}}
    trainer.check_same_teacher(state, [v2, v1], "ckpt")
    v1_without_tta = types.SimpleNamespace(name="compact_resnet", tta=False, sha="a" * 64)
    with pytest.raises(ValueError, match="compact_resnet with flip TTA"):
        trainer.check_same_teacher(state, [v2, v1_without_tta], "ckpt")
