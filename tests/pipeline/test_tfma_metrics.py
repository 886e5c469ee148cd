"""Macro-F1 from the confusion matrix (checked against scikit-learn) and the expected
calibration error (checked against a direct per-example computation)."""

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


def _ece_reference(probabilities, labels, bins=10):
    """Direct ECE: per example, its bin; |mean confidence - accuracy| weighted by bin size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    total = 0.0
    for b in range(bins):
        in_bin = (confidence >= b / bins) & ((confidence < (b + 1) / bins) if b < bins - 1 else (confidence <= 1.0))
        if in_bin.any():
            total += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return total


@pytest.mark.parametrize("seed", range(3))
def test_ece_matches_a_direct_computation_and_merges(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(500, 7)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 7, 500)
    table = tfma_metrics.calibration_bins(probabilities, labels)
    assert tfma_metrics.ece_from_bins(table) == pytest.approx(_ece_reference(probabilities, labels))
    halves = tfma_metrics.calibration_bins(probabilities[:200], labels[:200]) + \
        tfma_metrics.calibration_bins(probabilities[200:], labels[200:])
    np.testing.assert_allclose(halves, table)


def test_ece_of_a_calibrated_and_an_overconfident_model():
    # Always 100% sure and always right: calibrated. Always 100% sure, right half the time: 0.5.
    one_hot = np.eye(7)[[0, 1, 2, 3]]
    assert tfma_metrics.ece_from_bins(tfma_metrics.calibration_bins(one_hot, np.array([0, 1, 2, 3]))) == 0.0
    assert tfma_metrics.ece_from_bins(tfma_metrics.calibration_bins(one_hot, np.array([0, 1, 0, 0]))) == 0.5
    assert np.isnan(tfma_metrics.ece_from_bins(np.zeros((3, 10))))


def test_accuracy_over_majority_is_zero_for_a_constant_majority_model_and_positive_only_when_beating_it():
    counts = np.zeros((7, 7))
    counts[:, 3] = [5, 1, 5, 10, 5, 3, 1]  # always 'happy', the most frequent class
    assert tfma_metrics.majority_lift_from_confusion(counts) == pytest.approx(0.0)
    counts[:, 0] = counts[:, 3]  # always 'angry': worse than the majority class
    counts[:, 3] = 0
    assert tfma_metrics.majority_lift_from_confusion(counts) == pytest.approx((5 - 10) / 30)
    better = np.diag([5, 1, 5, 10, 5, 3, 1]).astype(float)  # perfect
    assert tfma_metrics.majority_lift_from_confusion(better) == pytest.approx(1 - 10 / 30)
    assert np.isnan(tfma_metrics.majority_lift_from_confusion(np.zeros((7, 7))))


def test_calibration_bins_count_a_diverged_models_nan_answers_as_wrong_at_confidence_0():
    from pipeline.tfma_metrics import calibration_bins

    probabilities = np.array([[np.nan] * 7, [0.9] + [0.1 / 6] * 6])
    table = calibration_bins(probabilities, np.array([0, 0]), bins=10)
    assert table[0].tolist() == [1] + [0] * 8 + [1]  # the NaN face in bin 0, the confident one in the last
    assert table[2].tolist() == [0] * 9 + [1]  # the NaN face is wrong even though argmax(NaN) is class 0
