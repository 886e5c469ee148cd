"""The Evaluator's TFMA configuration.

Metrics (on every slice): example count, accuracy, top-2 accuracy, per-class precision,
recall and F1 (class ids 0..6, named in reports through core/features.CLASS_NAMES),
macro-F1 and expected calibration error (pipeline/tfma_metrics.py), and the multi-class
confusion matrix. Slices: overall; true emotion; lighting and contrast quartiles (features
the Transform graph computes, read through the model's `transform_features` signature);
emotion x lighting.
Blessing: accuracy >= a lower bound, accuracy strictly above the majority-class baseline
(AccuracyOverMajority > 0), and no regression against the latest blessed model, all on the
overall slice only (a threshold in a plain MetricConfig would apply to every
slice, and a rare class's slice would then veto the model).
"""

from typing import Optional

import tensorflow_model_analysis as tfma

from core import features, names
from models.export import TRANSFORM_FEATURES_SIGNATURE
from pipeline import tfma_metrics

ACCURACY = names.ACCURACY
TOP2_ACCURACY = names.TOP2_ACCURACY
TOP1 = '{"top_k": 1, "thresholds": [0.0]}'
MAJORITY_MARGIN = 1e-9
SLICES = (
    (),
    (features.LABEL_KEY,),
    (features.LIGHTING_BUCKET_KEY,),
    (features.CONTRAST_BUCKET_KEY,),
    (features.LABEL_KEY, features.LIGHTING_BUCKET_KEY),
)


def make_eval_config(accuracy_lower_bound: Optional[float],
                     regression_tolerance: Optional[float] = 0.0) -> tfma.EvalConfig:
    """accuracy_lower_bound: None reports without blessing (no thresholds at all: the
    evaluation of the test split). regression_tolerance: how far (absolute accuracy) a
    candidate may fall below the latest blessed model; None drops the comparison (for
    evaluations without a baseline)."""
    overall = [tfma.SlicingSpec()]
    accuracy_thresholds, majority_thresholds = [], []
    if accuracy_lower_bound is not None:
        blessing = tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_lower_bound}),
        )
        if regression_tolerance is not None:
            blessing.change_threshold.CopyFrom(
                tfma.GenericChangeThreshold(
                    direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                    absolute={"value": -regression_tolerance - 1e-10},
                )
            )
        # Strictly above the majority-class baseline: TFMA's lower bound is inclusive.
        beats_majority = tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": MAJORITY_MARGIN}))
        accuracy_thresholds = [tfma.PerSliceMetricThreshold(slicing_specs=overall, threshold=blessing)]
        majority_thresholds = [tfma.PerSliceMetricThreshold(slicing_specs=overall, threshold=beats_majority)]
    class_ids = tfma.BinarizationOptions(class_ids={"values": list(range(features.NUM_CLASSES))})
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.EXAMPLES_SIGNATURE,
                label_key=features.LABEL_KEY,
                prediction_key=features.CLASSIFY_SCORES_OUTPUT,
                preprocessing_function_names=[TRANSFORM_FEATURES_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec(feature_keys=list(keys)) for keys in SLICES],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        per_slice_thresholds=accuracy_thresholds,
                    ),
                    tfma.MetricConfig(
                        class_name="SparseTopKCategoricalAccuracy",
                        config='{"k": 2, "name": "%s"}' % TOP2_ACCURACY,
                    ),
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                    tfma.MetricConfig(class_name="MacroF1", module=tfma_metrics.__name__),
                    tfma.MetricConfig(
                        class_name="AccuracyOverMajority", module=tfma_metrics.__name__,
                        per_slice_thresholds=majority_thresholds,
                    ),
                    tfma.MetricConfig(class_name="ExpectedCalibrationError", module=tfma_metrics.__name__),
                ]
            ),
            tfma.MetricsSpec(
                # top_k=1: class c counts as predicted when it is the arg-max, as in a
                # multi-class confusion matrix (the default 0.5 threshold on one class's
                # probability would call most arg-max predictions negative).
                metrics=[
                    tfma.MetricConfig(class_name="Precision", config=TOP1),
                    tfma.MetricConfig(class_name="Recall", config=TOP1),
                    tfma.MetricConfig(class_name="F1Score", config=TOP1),
                ],
                binarize=class_ids,
            ),
        ],
    )
