"""From a run directory to the numbers on the dashboard.

Finds the run's latest evaluation, blessing and class-balance report in its MLMD store,
reads the evaluation with TFMA's readers (metrics, plots, validation result) and arranges
it per slice. No TensorFlow graph is loaded; nothing here imports pipeline/ (the dashboard
relies only on the artifact types and models/features.py).
"""

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from models import features, names

SliceKey = Tuple[Tuple[str, int], ...]  # () overall; (("label", 3),); (("label", 3), ("lighting_bucket", 0))
CANDIDATE, BASELINE = "candidate", "baseline"
ACCURACY, TOP2, MACRO_F1, ECE, COUNT = names.ACCURACY, names.TOP2_ACCURACY, names.MACRO_F1, names.ECE, names.EXAMPLE_COUNT
HEADLINE = (ACCURACY, TOP2, MACRO_F1, ECE)
PER_CLASS = names.PER_CLASS_METRICS


class DashboardError(RuntimeError):
    """The run directory does not hold what the dashboard needs; the message says what."""


@dataclasses.dataclass
class SliceMetrics:
    metrics: Dict[Tuple[str, str, Optional[int]], float]  # (model, metric name, class id) -> value
    confusion: Dict[str, np.ndarray]  # model -> counts[actual, predicted]

    def get(self, name: str, model: str = CANDIDATE, class_id: Optional[int] = None) -> Optional[float]:
        value = self.metrics.get((model, name, class_id))
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    def count(self, model: str = CANDIDATE) -> int:
        value = self.get(COUNT, model)
        return int(value) if value is not None else 0


@dataclasses.dataclass
class Report:
    run_dir: str
    evaluation_uri: str
    slices: Dict[SliceKey, SliceMetrics]
    models: List[str]  # CANDIDATE, plus BASELINE when the evaluation compared against one
    blessed: Optional[bool]
    validation_failures: List[str]
    class_balance: Optional[dict]
    test_overall: Optional[SliceMetrics] = None  # PrivateTest's overall slice, when the data had it

    @property
    def has_baseline(self) -> bool:
        return BASELINE in self.models

    def slice(self, *pairs: Tuple[str, int]) -> Optional[SliceMetrics]:
        return self.slices.get(tuple(pairs))

    def bucket_slices(self, column: str, buckets: int) -> List[Optional[SliceMetrics]]:
        """One entry per bucket value, None where the slice has no examples."""
        return [self.slice((column, value)) for value in range(buckets)]


# ---- MLMD: where the run's artifacts are -------------------------------------------------

def latest_artifacts(run_dir: str) -> Dict[str, Optional[str]]:
    """URIs of the latest evaluation, its blessing (same execution) and class-balance report."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    path = os.path.join(run_dir, "metadata.sqlite")
    if not os.path.exists(path):
        raise DashboardError(f"{run_dir}: no metadata.sqlite; is this a `fer-pipeline run --output` directory?")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        store = metadata_store.MetadataStore(config)
    except RuntimeError:  # an empty file or another program's database: MLMD cannot open it read-only
        raise DashboardError(f"{path}: not a pipeline run's metadata (empty, or not an ML Metadata store); is "
                             f"{run_dir} a `fer-pipeline run --output` directory whose run has started?") from None

    def latest(type_name, where=lambda artifact: True):
        try:
            found = store.get_artifacts_by_type(type_name)
        except Exception:  # the type was never registered in this store
            return None
        found = [a for a in found if a.state == metadata_store_pb2.Artifact.LIVE and where(a)]
        return max(found, key=lambda a: a.id) if found else None

    def measured(split):
        """The evaluations of one split (the FerEvaluator records which it measured; runs
        from before it have only the PublicTest one)."""
        def where(artifact):
            value = artifact.custom_properties.get(names.EXAMPLE_SPLITS_PROPERTY)
            return json.loads(value.string_value) == [split] if value else split == features.EVAL_SPLIT
        return where

    evaluation = latest("ModelEvaluation", measured(features.EVAL_SPLIT))
    test_evaluation = latest("ModelEvaluation", measured(features.TEST_SPLIT))
    if evaluation is None:
        raise DashboardError(f"{run_dir}: the run has no Evaluator output yet (did training run?)")
    blessing = None
    producers = [e.execution_id for e in store.get_events_by_artifact_ids([evaluation.id])
                 if e.type == metadata_store_pb2.Event.OUTPUT]
    if producers:
        sibling_ids = [e.artifact_id for e in store.get_events_by_execution_ids(producers)
                       if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id(sibling_ids):
            if artifact.type == "ModelBlessing":
                blessing = artifact
    balance = latest("fer_artifacts.ClassBalance")
    blessed = None
    if blessing is not None and names.BLESSED_PROPERTY in blessing.custom_properties:
        blessed = bool(blessing.custom_properties[names.BLESSED_PROPERTY].int_value)
    return {"evaluation": evaluation.uri, "blessed": blessed, "class_balance": balance.uri if balance else None,
            "test_evaluation": test_evaluation.uri if test_evaluation else None}


# ---- TFMA output -> per-slice numbers ----------------------------------------------------

def _slice_key(proto) -> SliceKey:
    pairs = []
    for single in proto.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind)
        pairs.append((single.column, int(value) if kind != "bytes_value" else int(value.decode())))
    return tuple(pairs)


def _confusion(matrix_at_thresholds) -> np.ndarray:
    counts = np.zeros((features.NUM_CLASSES, features.NUM_CLASSES))
    if not matrix_at_thresholds.matrices:
        return counts
    for entry in matrix_at_thresholds.matrices[0].entries:
        if 0 <= entry.actual_class_id < features.NUM_CLASSES and 0 <= entry.predicted_class_id < features.NUM_CLASSES:
            counts[entry.actual_class_id, entry.predicted_class_id] += entry.num_weighted_examples
    return counts


def read_evaluation(evaluation_uri: str) -> Tuple[Dict[SliceKey, SliceMetrics], List[str]]:
    import tensorflow_model_analysis as tfma

    slices: Dict[SliceKey, SliceMetrics] = {}
    models = set()
    for record in tfma.load_metrics(evaluation_uri):
        entry = slices.setdefault(_slice_key(record.slice_key), SliceMetrics({}, {}))
        for item in record.metric_keys_and_values:
            key, value = item.key, item.value
            if key.is_diff or not value.HasField("double_value"):
                continue
            model = key.model_name or CANDIDATE
            models.add(model)
            class_id = key.sub_key.class_id.value if key.sub_key.HasField("class_id") else None
            entry.metrics[(model, key.name, class_id)] = value.double_value.value
    for record in tfma.load_plots(evaluation_uri):
        entry = slices.setdefault(_slice_key(record.slice_key), SliceMetrics({}, {}))
        for item in record.plot_keys_and_values:
            if item.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                entry.confusion[item.key.model_name or CANDIDATE] = _confusion(
                    item.value.multi_class_confusion_matrix_at_thresholds)
    if not slices:
        raise DashboardError(f"{evaluation_uri}: TFMA wrote no metrics there")
    return slices, [m for m in (CANDIDATE, BASELINE) if m in models] or [CANDIDATE]


def validation_failures(evaluation_uri: str) -> List[str]:
    import tensorflow_model_analysis as tfma

    try:
        result = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no validation result written (no thresholds)
        return []
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(f"{failure.metric_key.name} = {failure.metric_value.double_value.value:.4f}: "
                            f"{failure.message}".strip())
    return failures


def load_report(run_dir: str, baseline: bool = True) -> Report:
    """baseline=False drops the baseline model's numbers (`--baseline none`)."""
    found = latest_artifacts(os.path.abspath(run_dir))
    slices, models = read_evaluation(found["evaluation"])
    if not baseline:
        models = [CANDIDATE]
    class_balance = None
    if found["class_balance"]:
        path = os.path.join(found["class_balance"], names.CLASS_BALANCE_FILE)
        if os.path.exists(path):
            with open(path) as f:
                class_balance = json.load(f)
    test_overall = read_evaluation(found["test_evaluation"])[0].get(()) if found["test_evaluation"] else None
    return Report(run_dir=os.path.abspath(run_dir), evaluation_uri=found["evaluation"], slices=slices,
                  models=models, blessed=found["blessed"], validation_failures=validation_failures(found["evaluation"]),
                  class_balance=class_balance, test_overall=test_overall)
