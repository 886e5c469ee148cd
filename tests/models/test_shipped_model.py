"""The shipped model (models/pretrained/): it loads, answers uint8 faces with 7
probabilities, and its model card's PublicTest figures are what an independent count
measures now (the real file, when present): the CSV read with gzip/csv and the SavedModel's
`serving_default` called here, not through tools/evaluate.py, which wrote the card."""

import json
import os

import numpy as np

from core import features


def _card():
    with open(os.path.join(features.SHIPPED_MODEL_BASE_PATH, "model_card.json")) as f:
        return json.load(f)


def _version_dir():
    return os.path.join(features.SHIPPED_MODEL_BASE_PATH, _card()["version"])


def test_shipped_model_is_the_one_its_card_describes_and_fits_the_size_limit():
    card = _card()
    versions = [v for v in os.listdir(features.SHIPPED_MODEL_BASE_PATH) if v.isdigit()]
    assert versions == [card["version"]]
    assert card["model"] == features.SHIPPED_MODEL_NAME
    total = sum(os.path.getsize(os.path.join(root, f))
                for root, _, files in os.walk(features.SHIPPED_MODEL_BASE_PATH) for f in files)
    assert total <= 10 * 1024 * 1024
    assert os.path.exists(os.path.join(features.SHIPPED_MODEL_BASE_PATH, "MODEL_CARD.md"))


def test_shipped_model_returns_seven_probabilities_for_uint8_faces():
    import tensorflow as tf

    serve = tf.saved_model.load(_version_dir()).signatures["serving_default"]
    faces = np.random.default_rng(0).integers(0, 256, (5,) + features.IMAGE_SHAPE).astype(np.uint8)
    probabilities = serve(**{features.SERVING_IMAGE_INPUT: tf.constant(faces)})[
        features.SERVING_PROBABILITIES_OUTPUT].numpy()
    assert probabilities.shape == (5, features.NUM_CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


def _publictest_independently(csv_path):
    """(labels, faces) of the PublicTest rows, read without the project's parser."""
    import csv
    import gzip

    labels, faces = [], []
    with gzip.open(csv_path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"].strip() == "PublicTest":
                labels.append(int(row["emotion"]))
                faces.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48, 1))
    return np.array(labels), np.stack(faces)


def test_an_independent_count_on_publictest_reproduces_the_model_card(real_fer_csv):
    import tensorflow as tf

    card = _card()
    labels, faces = _publictest_independently(real_fer_csv)
    serve = tf.saved_model.load(_version_dir()).signatures["serving_default"]
    probabilities = np.concatenate([serve(image=tf.constant(faces[i:i + 256]))["probabilities"].numpy()
                                    for i in range(0, len(faces), 256)])
    predicted = probabilities.argmax(axis=1)
    top2 = np.argsort(probabilities, axis=1)[:, -2:]
    confusion = np.zeros((7, 7), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    recorded = card["evaluation"]["PublicTest"]
    assert len(labels) == recorded["examples"] == 3589
    assert abs((predicted == labels).mean() - recorded["accuracy"]) <= 0.001  # to 0.1 point
    assert abs((top2 == labels[:, None]).any(axis=1).mean() - recorded["top2_accuracy"]) <= 0.001
    # and the whole confusion matrix, to within a few faces a row (float summation order)
    assert np.abs(confusion - np.array(recorded["confusion_matrix"])).sum(axis=1).max() <= 5


def test_the_stated_cost_per_face_is_what_the_exported_signature_runs():
    from models import macs, registry

    model = registry.build(_card()["model"])
    per_face = macs.serving_macs(_version_dir(), model)
    assert macs.forward_passes(_version_dir(), model) == (2 if _card()["config"]["tta"] else 1)
    share = macs.count_macs(registry.build("proposed_cnn")) / per_face
    readme = open(os.path.join(os.path.dirname(features.SHIPPED_MODEL_BASE_PATH), "..", "..", "README.md")).read()
    assert f"{per_face / 1e6:.1f} M multiply-adds per face" in readme
    assert f"1/{share:.1f} of the paper CNN" in readme
