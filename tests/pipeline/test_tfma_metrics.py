"""Macro-F1 from the confusion matrix, checked against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import f1_score
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline import tfma_metrics


@pytest.mark.parametrize("seed", range(4))
def test_macro_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 7, 200)
    y_pred = np.where(rng.random(200) < 0.5, y_true, rng.integers(0, 5, 200))  # classes 5, 6 rarely predicted
    counts = np.zeros((7, 7))
    np.add.at(counts, (y_true, y_pred), 1)
    assert tfma_metrics.macro_f1_from_confusion(counts) == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )


def test_constant_predictor():
    counts = np.zeros((7, 7))
    counts[:, 3] = [5, 1, 5, 10, 5, 3, 1]  # always predicts 'happy'
    f1_happy = 2 * 10 / (10 + 30)
    assert tfma_metrics.macro_f1_from_confusion(counts) == pytest.approx(f1_happy / 7)


def test_confusion_counts_from_tfma_proto_drops_no_prediction():
    matrix = metrics_for_slice_pb2.MultiClassConfusionMatrixAtThresholds.MultiClassConfusionMatrix()
    matrix.entries.add(actual_class_id=2, predicted_class_id=2, num_weighted_examples=4)
    matrix.entries.add(actual_class_id=2, predicted_class_id=5, num_weighted_examples=1)
    matrix.entries.add(actual_class_id=1, predicted_class_id=-1, num_weighted_examples=3)
    counts = tfma_metrics.confusion_counts(matrix)
    assert counts[2, 2] == 4 and counts[2, 5] == 1 and counts.sum() == 5
