"""Class-balance analysis: plain functions over per-split label counts (no TFX).

The report, per split: count and share of each named class, the imbalance ratio
(largest / smallest class; inf when a class is absent), classes whose share is below
`min_share`; across splits: the L-infinity distance between the train and each other
split's label distribution against `max_distance`; and balanced class weights from the
train split, w_c = n / (k * n_c) (sklearn's 'balanced'), for the Trainer when asked.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Mapping, Sequence

from core import features, names

REPORT_FILE = names.CLASS_BALANCE_FILE
DEFAULT_MIN_SHARE = 0.05
DEFAULT_MAX_DISTANCE = 0.05


def split_report(counts: Sequence[int], min_share: float) -> dict:
    if len(counts) != features.NUM_CLASSES:
        raise ValueError(f"expected {features.NUM_CLASSES} class counts, got {len(counts)}")
    total = sum(counts)
    shares = [c / total if total else 0.0 for c in counts]
    smallest = min(counts)
    return {
        "total": total,
        "classes": {
            name: {"count": int(c), "share": s} for name, c, s in zip(features.CLASS_NAMES, counts, shares)
        },
        "imbalance_ratio": (max(counts) / smallest) if smallest else math.inf,
        "below_min_share": [n for n, s in zip(features.CLASS_NAMES, shares) if s < min_share],
    }


def distribution_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """L-infinity distance between two label distributions given as counts."""
    ta, tb = sum(a), sum(b)
    if not ta or not tb:
        return math.inf
    return max(abs(x / ta - y / tb) for x, y in zip(a, b))


def balanced_class_weights(counts: Sequence[int]) -> Dict[int, float]:
    """w_c = n / (k n_c). A class absent from training gets weight 1.0 (it never occurs)."""
    total, k = sum(counts), len(counts)
    return {i: (total / (k * c) if c else 1.0) for i, c in enumerate(counts)}


def analyze(split_counts: Mapping[str, Sequence[int]], min_share: float = DEFAULT_MIN_SHARE,
            max_distance: float = DEFAULT_MAX_DISTANCE, train_split: str = features.TRAIN_SPLIT) -> dict:
    if train_split not in split_counts:
        raise ValueError(f"class balance needs the {train_split!r} split; got {sorted(split_counts)}")
    train = split_counts[train_split]
    splits = {name: split_report(c, min_share) for name, c in split_counts.items()}
    drift = {
        name: {"linf": distribution_distance(train, c), "exceeds": distribution_distance(train, c) > max_distance}
        for name, c in split_counts.items()
        if name != train_split
    }
    findings: List[str] = []
    for name, rep in splits.items():
        for cls in rep["below_min_share"]:
            findings.append(
                f"{name}: class '{cls}' is {rep['classes'][cls]['share']:.2%} of {rep['total']} examples "
                f"(below {min_share:.0%})"
            )
    for name, d in drift.items():
        if d["exceeds"]:
            findings.append(f"label distribution of '{name}' differs from '{train_split}' by L-inf {d['linf']:.3f} "
                            f"(> {max_distance})")
    return {
        "min_share": min_share,
        "max_distance": max_distance,
        "splits": splits,
        "distance_from_train": drift,
        "class_weights": {str(i): w for i, w in balanced_class_weights(train).items()},
        "findings": findings,
        "imbalanced": bool(findings),
    }


def headline(report: dict) -> str:
    train = report["splits"].get(features.TRAIN_SPLIT, {})
    ratio = train.get("imbalance_ratio", float("nan"))
    flagged = sorted({c for s in report["splits"].values() for c in s["below_min_share"]})
    text = f"imbalance ratio (train) {ratio:.1f}"
    text += f"; under-represented: {', '.join(flagged)}" if flagged else "; no class under-represented"
    drifted = [n for n, d in report["distance_from_train"].items() if d["exceeds"]]
    if drifted:
        text += f"; label drift vs train: {', '.join(drifted)}"
    return text


def label_counts_from_stats(dataset_stats, label_key: str = features.LABEL_KEY) -> List[int]:
    """Per-class counts from a tensorflow_metadata DatasetFeatureStatistics for one split.

    Needs the label's categorical statistics, which StatisticsGen computes when the schema
    marks the label `is_categorical` (schema/schema.pbtxt does)."""
    for feature in dataset_stats.features:
        name = feature.path.step[-1] if feature.path.step else feature.name
        if name != label_key:
            continue
        if not feature.HasField("string_stats"):
            raise ValueError(f"label {label_key!r} has no categorical statistics: mark it is_categorical in the schema")
        counts = [0] * features.NUM_CLASSES
        buckets = feature.string_stats.rank_histogram.buckets or feature.string_stats.top_values
        for bucket in buckets:
            value = getattr(bucket, "label", None) or getattr(bucket, "value", None)
            count = getattr(bucket, "sample_count", None) or getattr(bucket, "frequency", 0)
            index = int(value)
            if not 0 <= index < features.NUM_CLASSES:
                raise ValueError(f"label value {value!r} is outside 0..{features.NUM_CLASSES - 1}")
            counts[index] = int(round(count))
        return counts
    raise ValueError(f"statistics have no feature {label_key!r}")


def write_report(report: dict, directory: str) -> str:
    import tensorflow as tf

    path = os.path.join(directory, REPORT_FILE)
    # Orchestrators differ: TFX's local runner creates output directories, the KFP v2
    # container entrypoint does not (a gs:// URI needs none; a mounted path does).
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    return path


def report_class_weights(report: dict) -> Dict[int, float]:
    """The balanced class weights of a report (JSON keys are strings), by class id."""
    return {int(k): float(v) for k, v in report["class_weights"].items()}


def read_report(directory: str) -> dict:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(directory, REPORT_FILE)) as f:
        return json.load(f)
