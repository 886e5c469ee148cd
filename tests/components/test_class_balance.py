"""Class-balance logic, reading label counts from real TFDV statistics, and the component."""

import json
import math
import os

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.class_balance import component, logic
from core import features
from tools.demo_data import FER_TRAIN_COUNTS

FER_PUBLIC_TEST_COUNTS = (467, 56, 496, 895, 653, 415, 607)


def test_fer2013_flags_disgust_and_weights_it_up():
    report = logic.analyze({"train": FER_TRAIN_COUNTS, "eval": FER_PUBLIC_TEST_COUNTS})
    train = report["splits"]["train"]
    assert train["total"] == 28709
    assert train["below_min_share"] == ["disgust"]
    assert train["classes"]["disgust"]["share"] == pytest.approx(436 / 28709)
    assert train["imbalance_ratio"] == pytest.approx(7215 / 436)
    assert report["distance_from_train"]["eval"]["exceeds"] is False
    assert report["imbalanced"] is True
    assert any("disgust" in f for f in report["findings"])
    weights = report["class_weights"]
    assert weights["1"] == pytest.approx(28709 / (7 * 436))  # sklearn's 'balanced'
    assert max(weights, key=weights.get) == "1"
    assert "disgust" in logic.headline(report)


def test_balanced_data_has_no_findings():
    report = logic.analyze({"train": [100] * 7, "eval": [10] * 7})
    assert report["findings"] == [] and report["imbalanced"] is False
    assert report["splits"]["train"]["imbalance_ratio"] == 1.0
    assert set(report["class_weights"].values()) == {1.0}


def test_distribution_drift_is_flagged():
    report = logic.analyze({"train": [100] * 7, "eval": [40, 10, 10, 10, 10, 10, 10]}, max_distance=0.05)
    assert report["distance_from_train"]["eval"]["linf"] == pytest.approx(0.4 - 1 / 7)
    assert report["distance_from_train"]["eval"]["exceeds"] is True


def test_missing_class_gives_infinite_ratio_and_unit_weight():
    report = logic.analyze({"train": [10, 0, 10, 10, 10, 10, 10]})
    assert math.isinf(report["splits"]["train"]["imbalance_ratio"])
    assert report["class_weights"]["1"] == 1.0


def test_needs_train_split():
    with pytest.raises(ValueError, match="train"):
        logic.analyze({"eval": [1] * 7})


def _label_stats(labels):
    """Real TFDV statistics of a label column, with the curated schema (categorical)."""
    import pandas as pd

    from schema import SCHEMA_FILE

    schema = tfdv.load_schema_text(SCHEMA_FILE)
    options = tfdv.StatsOptions(schema=schema, feature_allowlist=[features.LABEL_KEY])
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame({features.LABEL_KEY: labels}), options)


def test_label_counts_from_tfdv_statistics():
    labels = [0] * 5 + [3] * 9 + [6] * 2
    stats = _label_stats(labels)
    assert logic.label_counts_from_stats(stats.datasets[0]) == [5, 0, 0, 9, 0, 0, 2]


def test_label_counts_need_categorical_stats():
    stats = statistics_pb2.DatasetFeatureStatistics()
    feature = stats.features.add()
    feature.path.step.append(features.LABEL_KEY)
    feature.num_stats.mean = 3
    with pytest.raises(ValueError, match="is_categorical"):
        logic.label_counts_from_stats(stats)


def test_component_writes_report(tmp_path):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "stats")
    statistics.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split, labels in {"train": [0] * 30 + [1] + [3] * 40, "eval": [0] * 3 + [3] * 4}.items():
        directory = os.path.join(statistics.uri, f"Split-{split}")
        os.makedirs(directory)
        # StatisticsGen's layout: one binary DatasetFeatureStatisticsList per split.
        with open(os.path.join(directory, "FeatureStats.pb"), "wb") as f:
            f.write(_label_stats(labels).SerializeToString())
    out = component.ClassBalance()
    out.uri = str(tmp_path / "out")
    os.makedirs(out.uri)
    component.ClassBalanceCheck.test_call(statistics=statistics, class_balance=out, min_class_share=0.05,
                                          max_distribution_distance=0.05)
    report = json.load(open(os.path.join(out.uri, logic.REPORT_FILE)))
    assert report["splits"]["train"]["classes"]["disgust"]["count"] == 1
    assert report["splits"]["train"]["below_min_share"][:2] == ["disgust", "fear"]
    assert out.get_int_custom_property("imbalanced") == 1
