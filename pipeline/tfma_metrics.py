"""Custom TFMA metrics.

MacroF1: macro-F1 over the 7 classes, from the arg-max confusion matrix. TFMA's own macro
averaging cannot combine with top-k (arg-max) binarization of per-class F1 (it looks for
sub-keys without top_k), so this metric derives macro-F1 from the multi-class confusion
matrix that the Evaluator computes anyway (threshold 0.0 = arg-max).

AccuracyOverMajority: accuracy minus the share of the slice's most frequent class, from
the same confusion matrix: what a model gains over always answering that class. The
blessing requires it to be positive, so a constant "happy" model is never blessed, whatever
the accuracy bound says.

ExpectedCalibrationError: how far the model's top-1 confidence is from its top-1 accuracy,
averaged over 10 equal-width confidence bins weighted by their example counts (Guo et al.
2017). TFMA's calibration metrics are binary (one class at a time); a multi-class softmax
is judged by its arg-max confidence.
"""

from typing import Dict, Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util, multi_class_confusion_matrix_metrics
from tensorflow_model_analysis.proto import config_pb2

from core import features, names

MACRO_F1_NAME = names.MACRO_F1
MAJORITY_LIFT_NAME = names.MAJORITY_LIFT


def macro_f1_from_confusion(counts: np.ndarray) -> float:
    """counts[actual, predicted]. Averages F1 over the classes that occur as a label or
    a prediction (scikit-learn's macro-F1); a class's F1 is 0 when it has no true positive."""
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.diag(counts)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    present = (support + predicted) > 0
    if not present.any():
        return float("nan")
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1[present].mean())


def confusion_counts(matrix_proto, num_classes: int = features.NUM_CLASSES) -> np.ndarray:
    """Dense [actual, predicted] counts from one MultiClassConfusionMatrixAtThresholds
    matrix; examples with no prediction (below the threshold) are left out."""
    counts = np.zeros((num_classes, num_classes))
    for entry in matrix_proto.entries:
        if 0 <= entry.actual_class_id < num_classes and 0 <= entry.predicted_class_id < num_classes:
            counts[entry.actual_class_id, entry.predicted_class_id] += entry.num_weighted_examples
    return counts


def _metric_key(name: str, model_name: str, output_name: str, example_weighted: bool) -> metric_types.MetricKey:
    return metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                  example_weighted=example_weighted)


def majority_lift_from_confusion(counts: np.ndarray) -> float:
    """Accuracy minus the accuracy of always answering the slice's most frequent true
    class: > 0 only for a model that beats the majority-class baseline."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    return float((np.trace(counts) - counts.sum(axis=1).max()) / total)


def _from_confusion(function):
    """TFMA computations of a metric derived from the arg-max multi-class confusion matrix
    (which the Evaluator computes anyway) by `function(counts[actual, predicted])`."""

    def computations(
        name: str,
        eval_config: Optional[config_pb2.EvalConfig] = None,
        model_name: str = "",
        output_name: str = "",
        example_weighted: bool = False,
    ) -> metric_types.MetricComputations:
        key = _metric_key(name, model_name, output_name, example_weighted)
        result_computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
            thresholds=[0.0],
            eval_config=eval_config,
            model_name=model_name,
            output_name=output_name,
            example_weighted=example_weighted,
        )
        matrices_key = result_computations[-1].keys[-1]

        def result(metrics: Dict) -> Dict:
            proto = metrics[matrices_key].to_proto().multi_class_confusion_matrix_at_thresholds
            return {key: function(confusion_counts(proto.matrices[0]))}

        result_computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
        return result_computations

    return computations


class MacroF1(metric_types.Metric):
    def __init__(self, name: str = MACRO_F1_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion(macro_f1_from_confusion)), name=name)


class AccuracyOverMajority(metric_types.Metric):
    """Accuracy minus the majority-class share of the slice (majority_lift_from_confusion);
    the blessing requires it above 0 on the overall slice, whatever the accuracy bound."""

    def __init__(self, name: str = MAJORITY_LIFT_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion(majority_lift_from_confusion)),
                         name=name)


metric_types.register_metric(AccuracyOverMajority)
metric_types.register_metric(MacroF1)

ECE_NAME = names.ECE
ECE_BINS = 10


def calibration_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """[3, bins]: per confidence bin, example count, sum of top-1 confidence, correct count."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(labels), -1)
    # A model that diverged answers NaN: such a face counts as confidence 0 and wrong (its
    # Evaluator then declines it instead of failing on a bin index).
    finite = np.isfinite(probabilities).all(axis=1)
    confidence = np.where(finite, np.clip(np.nan_to_num(probabilities.max(axis=1)), 0.0, 1.0), 0.0)
    correct = finite & (probabilities.argmax(axis=1) == np.asarray(labels).reshape(-1))
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    table = np.zeros((3, bins))
    np.add.at(table[0], index, 1.0)
    np.add.at(table[1], index, confidence)
    np.add.at(table[2], index, correct)
    return table


def ece_from_bins(table: np.ndarray) -> float:
    counts, confidence, correct = table
    total = counts.sum()
    if total == 0:
        return float("nan")
    filled = counts > 0
    gap = np.abs(confidence[filled] - correct[filled]) / counts[filled]
    return float((counts[filled] / total * gap).sum())


class ExpectedCalibrationError(metric_types.Metric):
    def __init__(self, name: str = ECE_NAME, bins: int = ECE_BINS):
        super().__init__(metric_util.merge_per_key_computations(_ece), name=name, bins=bins)


def _ece(
    name: str = ECE_NAME,
    bins: int = ECE_BINS,
    eval_config: Optional[config_pb2.EvalConfig] = None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    key = _metric_key(name, model_name, output_name, example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_EceCombiner(key, eval_config, model_name, output_name, bins))]


class _EceCombiner(beam.CombineFn):
    def __init__(self, key, eval_config, model_name, output_name, bins):
        self._key, self._eval_config = key, eval_config
        self._model_name, self._output_name, self._bins = model_name, output_name, bins

    def create_accumulator(self) -> np.ndarray:
        return np.zeros((3, self._bins))

    def add_input(self, accumulator: np.ndarray, element: metric_types.StandardMetricInputs) -> np.ndarray:
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._model_name,
                output_name=self._output_name, flatten=False):
            accumulator += calibration_bins(np.reshape(prediction, (1, -1)), np.reshape(label, [-1])[:1], self._bins)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return sum(accumulators, self.create_accumulator())

    def extract_output(self, accumulator: np.ndarray) -> Dict:
        return {self._key: ece_from_bins(accumulator)}


metric_types.register_metric(ExpectedCalibrationError)
