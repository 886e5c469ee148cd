"""The Evaluator's configuration: metrics, slices, and a blessing on the overall slice only."""

import tensorflow_model_analysis as tfma

from pipeline import eval_config


def _metric_names(config):
    return {m.class_name for spec in config.metrics_specs for m in spec.metrics}


def test_metrics_and_slices():
    config = eval_config.make_eval_config(0.4)
    assert {"ExampleCount", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MultiClassConfusionMatrixPlot",
            "MacroF1", "ExpectedCalibrationError", "Precision", "Recall", "F1Score"} <= _metric_names(config)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [
        [], ["label"], ["lighting_bucket"], ["contrast_bucket"], ["label", "lighting_bucket"]]
    spec = config.model_specs[0]
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == ("classify", "label", "scores")
    # The lighting and contrast buckets come from the exported Transform graph.
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    binarized = [s for s in config.metrics_specs if s.HasField("binarize")]
    assert list(binarized[0].binarize.class_ids.values) == list(range(7))


def test_blessing_bound_is_on_the_overall_slice_only():
    config = eval_config.make_eval_config(0.4, regression_tolerance=0.01)
    thresholds = {m.class_name: t for s in config.metrics_specs for m in s.metrics for t in m.per_slice_thresholds}
    assert set(thresholds) == {"SparseCategoricalAccuracy", "AccuracyOverMajority"}
    majority = thresholds["AccuracyOverMajority"]
    assert [list(s.feature_keys) for s in majority.slicing_specs] == [[]]
    assert 0 < majority.threshold.value_threshold.lower_bound.value < 1e-6  # strictly above the majority class
    metric = next(m for s in config.metrics_specs for m in s.metrics if m.class_name == "SparseCategoricalAccuracy")
    threshold = thresholds["SparseCategoricalAccuracy"]
    assert metric.class_name == "SparseCategoricalAccuracy" and not metric.HasField("threshold")
    assert [list(s.feature_keys) for s in threshold.slicing_specs] == [[]]
    assert threshold.threshold.value_threshold.lower_bound.value == 0.4
    change = threshold.threshold.change_threshold
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value < -0.01 + 1e-9


def test_no_regression_check_when_asked():
    config = eval_config.make_eval_config(0.4, regression_tolerance=None)
    threshold = config.metrics_specs[0].metrics[1].per_slice_thresholds[0].threshold
    assert not threshold.HasField("change_threshold")


def test_report_only_config_has_no_threshold_at_all():
    config = eval_config.make_eval_config(None)
    assert not [t for s in config.metrics_specs for m in s.metrics for t in m.per_slice_thresholds]
    assert {m.class_name for s in config.metrics_specs for m in s.metrics} >= {"AccuracyOverMajority", "MacroF1"}
