"""The TFLite twin of a served model: the same computation as serving_default (scaling, the
model, flip TTA), for every model of the registry; int8 calibrated on faces; the weights of an
exported SavedModel restored into the registry model."""

import numpy as np
import pytest
import tensorflow as tf

from core import features
from models import catalog, registry, tflite_export


def run_tflite(flatbuffer: bytes, faces: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], list(faces.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], faces)
    interpreter.invoke()
    return interpreter.get_tensor(result["index"])


def _faces(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n,) + features.IMAGE_SHAPE).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(catalog.ENTRIES))
def test_float32_twin_computes_what_the_model_serves(name):
    model = registry.build(name)
    faces = _faces()
    scaled = faces.astype(np.float32) / 255.0
    for tta in (False, True):
        expected = model(scaled, training=False).numpy()
        if tta:
            expected = (expected + model(scaled[:, :, ::-1], training=False).numpy()) / 2
        got = run_tflite(tflite_export.to_tflite(model, tta, "float32"), faces)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_int8_needs_calibration_faces_and_keeps_uint8_in_and_float_out():
    model = registry.build("simple_cnn")
    with pytest.raises(ValueError, match="calibration"):
        tflite_export.to_tflite(model, False, "int8")
    with pytest.raises(ValueError, match="quantization 'int4'"):
        tflite_export.to_tflite(model, False, "int4")
    flatbuffer = tflite_export.to_tflite(model, False, "int8", _faces(64, seed=1))
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    probabilities = run_tflite(flatbuffer, _faces())
    assert probabilities.shape == (6, features.NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=0.05)


def test_training_batches_come_back_as_the_served_uint8_faces():
    faces = _faces(10)
    batches = [(faces[:4].astype(np.float32) / 255.0, None), (faces[4:].astype(np.float32) / 255.0, None)]
    np.testing.assert_array_equal(tflite_export.first_faces(batches, limit=7), faces[:7])


def test_a_saved_models_weights_restore_into_its_registry_model():
    import json
    import os

    with open(os.path.join(features.SHIPPED_MODEL_BASE_PATH, "model_card.json")) as f:
        card = json.load(f)
    version = os.path.join(features.SHIPPED_MODEL_BASE_PATH, card["version"])
    model = tflite_export.keras_model_from_saved_model(version, card["model"])
    faces = _faces()
    served = tf.saved_model.load(version).signatures["serving_default"](
        **{features.SERVING_IMAGE_INPUT: tf.constant(faces)})[features.SERVING_PROBABILITIES_OUTPUT].numpy()
    np.testing.assert_allclose(run_tflite(tflite_export.to_tflite(model, card["config"]["tta"], "float32"), faces), served,
                               rtol=1e-4, atol=1e-5)


def test_valid_batches_come_back_as_faces_and_class_ids():
    faces = _faces(10)
    batches = [(faces[:4].astype(np.float32) / 255.0, np.array([[1], [2], [3], [4]])),
               (faces[4:].astype(np.float32) / 255.0, np.arange(6))]
    got, labels = tflite_export.faces_and_labels(batches)
    np.testing.assert_array_equal(got, faces)
    np.testing.assert_array_equal(labels, [1, 2, 3, 4, 0, 1, 2, 3, 4, 5])
    empty, none = tflite_export.faces_and_labels([])
    assert empty.shape == (0,) + features.IMAGE_SHAPE and none.shape == (0,)


def _serve(model, tta=False):
    serve = tflite_export.serving_function(model, tta)
    return lambda batch: serve(tf.constant(batch))[features.SERVING_PROBABILITIES_OUTPUT].numpy()


def test_a_twin_is_accepted_within_the_tolerance_of_its_model_and_refused_below_it():
    import keras

    keras.utils.set_random_seed(0)
    model, other = registry.build("simple_cnn"), registry.build("simple_cnn")
    faces = _faces(64, seed=2)
    labels = _serve(model)(faces).argmax(1)  # the model is right on every face
    same = tflite_export.check_twin(tflite_export.to_tflite(model, False, "float32"), _serve(model), faces, labels)
    assert same == {"faces": 64, "model_accuracy": 1.0, "twin_accuracy": 1.0, "agreement": 1.0, "accepted": True}
    wrong = tflite_export.check_twin(tflite_export.to_tflite(other, False, "float32"), _serve(model), faces, labels)
    assert wrong["model_accuracy"] == 1.0 and wrong["twin_accuracy"] < 0.995 and wrong["accepted"] is False
    assert wrong["agreement"] == wrong["twin_accuracy"]


def test_the_trainer_writes_the_twin_only_when_it_passes_its_check(tmp_path, monkeypatch, capsys):
    import os

    from models import trainer

    model = registry.build("simple_cnn")
    faces = _faces(32, seed=3)
    batches = [(faces.astype(np.float32) / 255.0, _serve(model)(faces).argmax(1))]
    config = trainer.TrainConfig(model="simple_cnn")
    # (an untrained model's int8 twin may differ on noise faces: the tolerance decides here)
    monkeypatch.setattr(tflite_export, "TWIN_TOLERANCE", 1.0)  # any twin passes
    os.makedirs(tmp_path / "ok")  # the exported SavedModel's folder
    check = trainer.write_tflite_twin(model, config, batches, batches, str(tmp_path / "ok"))
    assert check["accepted"] and os.path.exists(tmp_path / "ok" / tflite_export.TFLITE_FILE)
    assert check["faces"] == 32 and check["model_accuracy"] == 1.0
    assert "[Trainer] TFLite twin (int8): valid accuracy" in capsys.readouterr().out
    monkeypatch.setattr(tflite_export, "TWIN_TOLERANCE", -1.0)  # no twin can pass
    os.makedirs(tmp_path / "refused")
    check = trainer.write_tflite_twin(model, config, batches, batches, str(tmp_path / "refused"))
    assert check["accepted"] is False and not os.path.exists(tmp_path / "refused" / tflite_export.TFLITE_FILE)
    assert "[Trainer] no TFLite twin: int8 scored valid accuracy" in capsys.readouterr().out


def test_a_tta_twin_checks_against_labels_as_tfxio_gives_them_and_refuses_what_it_cannot_check():
    model = registry.build("simple_cnn")
    faces = _faces(16, seed=4)
    served = _serve(model, tta=True)
    labels = served(faces).argmax(1).reshape(-1, 1).astype(np.int64)  # [N, 1] class ids
    twin = tflite_export.to_tflite(model, True, "float32")
    assert tflite_export.check_twin(twin, served, faces, labels) == {
        "faces": 16, "model_accuracy": 1.0, "twin_accuracy": 1.0, "agreement": 1.0, "accepted": True}
    with pytest.raises(ValueError, match="got 0 faces"):
        tflite_export.check_twin(twin, served, faces[:0], labels[:0])
    with pytest.raises(ValueError, match="got 16 faces and 15 labels"):
        tflite_export.check_twin(twin, served, faces, labels[:15])


def test_a_twin_one_face_below_its_model_is_refused_at_half_a_point_and_accepted_at_two(monkeypatch):
    import keras

    keras.utils.set_random_seed(0)
    model = registry.build("simple_cnn")
    faces = _faces(64, seed=5)
    served = _serve(model)
    labels = served(faces).argmax(1)  # the model is right on every face
    real_run = tflite_export.run_twin

    def twin_wrong_on_face_0(flatbuffer, batch, batch_size=256):
        p = real_run(flatbuffer, batch, batch_size)
        p[0] = np.roll(p[0], 1)
        return p

    monkeypatch.setattr(tflite_export, "run_twin", twin_wrong_on_face_0)
    twin = tflite_export.to_tflite(model, False, "float32")
    assert tflite_export.check_twin(twin, served, faces, labels, tolerance=0.005)["accepted"] is False
    assert tflite_export.check_twin(twin, served, faces, labels, tolerance=0.02)["accepted"] is True
    assert tflite_export.check_twin(twin, served, faces, labels)["twin_accuracy"] == pytest.approx(63 / 64, abs=1e-4)


def test_the_twin_runs_in_batches_and_answers_as_one_call():
    model = registry.build("simple_cnn")
    faces = _faces(10, seed=6)
    twin = tflite_export.to_tflite(model, True, "float32")
    np.testing.assert_allclose(tflite_export.run_twin(twin, faces, batch_size=3), run_tflite(twin, faces),
                               rtol=1e-5, atol=1e-6)
