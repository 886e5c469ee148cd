"""What a run did, read back from its ML Metadata store and its Evaluator output: the one reader
of a run behind the console's stage lines (pipeline/console.py), the stage headlines
(pipeline/run_report.py) and the dashboard (dashboard/data.py).

- executions: the stages' executions in MLMD, their node, state and time;
- artifacts: a stage's outputs, an artifact's properties, the latest artifact of a type;
- blessing: the Evaluator's verdict on an evaluation;
- validation failures: why TFMA declined a model, one line each;
- TFMA metrics: an evaluation's numbers per slice and per model, and its confusion matrices.

It only reads: the store is opened READONLY, no TensorFlow graph is loaded, and TFMA is imported
by the functions that read an evaluation only. Of the project it imports core/ alone, so the
dashboard reads a run without loading TFX.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from ml_metadata.proto import metadata_store_pb2

from core import features, names

SliceKey = Tuple[Tuple[str, int], ...]  # () overall; (("label", 3),); (("label", 3), ("lighting_bucket", 0))
CANDIDATE, BASELINE = "candidate", "baseline"
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT,
                  # Resolver nodes record what they resolved as INTERNAL_OUTPUT events.
                  metadata_store_pb2.Event.INTERNAL_OUTPUT)


class RunError(RuntimeError):
    """The run directory does not hold what was asked of it; the message says what."""


# ---- the store ---------------------------------------------------------------------------

def open_store(metadata_path: str):
    """The MLMD store at `metadata_path`, read-only. RunError for a file MLMD cannot open."""
    from ml_metadata.metadata_store import metadata_store

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except RuntimeError:  # an empty file or another program's database: MLMD cannot open it read-only
        raise RunError(f"{metadata_path}: not a pipeline run's metadata (empty, or not an ML Metadata store)") from None


def open_run(run_dir: str):
    """The MLMD store of a `fer-pipeline run --output` directory."""
    path = os.path.join(run_dir, "metadata.sqlite")
    if not os.path.exists(path):
        raise RunError(f"{run_dir}: no metadata.sqlite; is this a `fer-pipeline run --output` directory?")
    try:
        return open_store(path)
    except RunError as e:
        raise RunError(f"{e}; is {run_dir} a `fer-pipeline run --output` directory whose run has started?") from None


# ---- executions --------------------------------------------------------------------------

def last_execution_id(store) -> int:
    """The newest execution's id, 0 in an empty store: a re-run counts the executions above it."""
    return max((e.id for e in store.get_executions()), default=0)


def executions_after(store, after_id: int) -> List[metadata_store_pb2.Execution]:
    """The executions newer than `after_id`, oldest first."""
    return sorted((e for e in store.get_executions() if e.id > after_id), key=lambda e: e.id)


def node_of(store, pipeline_name: str, execution_id: int) -> Optional[str]:
    """The pipeline node (stage) an execution ran, None for one of another pipeline."""
    prefix = pipeline_name + "."
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == "node" and context.name.startswith(prefix):
            return context.name[len(prefix):]
    return None


def is_finished(execution) -> bool:
    """COMPLETE, or CACHED when the stage reused earlier outputs."""
    return execution.last_known_state in (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


def is_cached(execution) -> bool:
    return execution.last_known_state == metadata_store_pb2.Execution.CACHED


def is_failed(execution) -> bool:
    return execution.last_known_state == metadata_store_pb2.Execution.FAILED


def seconds(execution) -> float:
    """The execution's own time (last update minus creation), not the time anyone saw it."""
    return max(0.0, (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000)


# ---- artifacts ---------------------------------------------------------------------------

def node_outputs(store, pipeline_name: str, node_id: str):
    """(execution, {output_key: [artifact, ...]}) of the node's latest execution, or None."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    if not executions:
        return None
    execution = max(executions, key=lambda e: e.id)
    keys = {event.artifact_id: event.path.steps[0].key if event.path.steps else "?"
            for event in store.get_events_by_execution_ids([execution.id]) if event.type in _OUTPUT_EVENTS}
    outputs: Dict[str, List] = {}
    for artifact in store.get_artifacts_by_id(list(keys)):
        outputs.setdefault(keys[artifact.id], []).append(artifact)
    return execution, outputs


def prop(artifact, name: str, default=None):
    """A custom property of an artifact, else its typed property, else `default`."""
    for table in (artifact.custom_properties, artifact.properties):
        if name in table:
            value = table[name]
            return getattr(value, value.WhichOneof("value"))
    return default


def latest_artifact(store, type_name: str, where: Callable = lambda artifact: True):
    """The newest LIVE artifact of a type that `where` accepts; None, also for a type this store
    never registered."""
    try:
        found = store.get_artifacts_by_type(type_name)
    except Exception:  # the type was never registered in this store
        return None
    found = [a for a in found if a.state == metadata_store_pb2.Artifact.LIVE and where(a)]
    return max(found, key=lambda a: a.id) if found else None


def latest_evaluation(store, split: str):
    """The newest ModelEvaluation of one split (the FerEvaluator records which it measured; runs
    from before it have only the PublicTest one)."""
    def measured(artifact):
        value = artifact.custom_properties.get(names.EXAMPLE_SPLITS_PROPERTY)
        return json.loads(value.string_value) == [split] if value else split == features.EVAL_SPLIT
    return latest_artifact(store, "ModelEvaluation", measured)


def produced_with(store, artifact, type_name: str):
    """The artifact of `type_name` that the execution which produced `artifact` also output
    (an evaluation's blessing), or None."""
    producers = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                 if e.type == metadata_store_pb2.Event.OUTPUT]
    if not producers:
        return None
    sibling_ids = [e.artifact_id for e in store.get_events_by_execution_ids(producers)
                   if e.type == metadata_store_pb2.Event.OUTPUT]
    found = [a for a in store.get_artifacts_by_id(sibling_ids) if a.type == type_name]
    return max(found, key=lambda a: a.id) if found else None


# ---- blessing ----------------------------------------------------------------------------

def blessed(blessing) -> Optional[bool]:
    """The Evaluator's verdict in a ModelBlessing; None without a blessing or a verdict."""
    value = prop(blessing, names.BLESSED_PROPERTY) if blessing is not None else None
    return None if value is None else value == 1


# ---- the run as a whole ------------------------------------------------------------------

def latest_artifacts(run_dir: str) -> Dict[str, Optional[object]]:
    """The run's latest evaluation (URI), its blessing's verdict (same execution; None when
    unknown), class-balance report and PrivateTest evaluation (URIs, None when absent)."""
    store = open_run(run_dir)
    evaluation = latest_evaluation(store, features.EVAL_SPLIT)
    if evaluation is None:
        raise RunError(f"{run_dir}: the run has no Evaluator output yet (did training run?)")
    test_evaluation = latest_evaluation(store, features.TEST_SPLIT)
    balance = latest_artifact(store, "fer_artifacts.ClassBalance")
    return {"evaluation": evaluation.uri, "blessed": blessed(produced_with(store, evaluation, "ModelBlessing")),
            "class_balance": balance.uri if balance else None,
            "test_evaluation": test_evaluation.uri if test_evaluation else None}


# ---- TFMA output: metrics per slice and model, validation ---------------------------------

@dataclasses.dataclass
class SliceMetrics:
    metrics: Dict[Tuple[str, str, Optional[int]], float]  # (model, metric name, class id) -> value
    confusion: Dict[str, np.ndarray]  # model -> counts[actual, predicted]

    def get(self, name: str, model: str = CANDIDATE, class_id: Optional[int] = None) -> Optional[float]:
        value = self.metrics.get((model, name, class_id))
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    def count(self, model: str = CANDIDATE) -> int:
        value = self.get(names.EXAMPLE_COUNT, model)
        return int(value) if value is not None else 0


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


def read_evaluation(evaluation_uri: str, plots: bool = True) -> Tuple[Dict[SliceKey, SliceMetrics], List[str]]:
    """({slice: its metrics, and confusion matrices unless plots=False}, the models evaluated:
    CANDIDATE, plus BASELINE when the evaluation compared against one). Every metric TFMA wrote
    is read, so a metric added to the EvalConfig arrives here by its name without a change.
    RunError when TFMA wrote no metrics there."""
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
    for record in (tfma.load_plots(evaluation_uri) if plots else ()):
        entry = slices.setdefault(_slice_key(record.slice_key), SliceMetrics({}, {}))
        for item in record.plot_keys_and_values:
            if item.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                entry.confusion[item.key.model_name or CANDIDATE] = _confusion(
                    item.value.multi_class_confusion_matrix_at_thresholds)
    if not slices:
        raise RunError(f"{evaluation_uri}: TFMA wrote no metrics there")
    return slices, [m for m in (CANDIDATE, BASELINE) if m in models] or [CANDIDATE]


def overall(evaluation_uri: str) -> Optional[SliceMetrics]:
    """The overall slice's metrics (no confusion matrices), None when there are none."""
    try:
        return read_evaluation(evaluation_uri, plots=False)[0].get(())
    except RunError:
        return None


def validation_failures(evaluation_uri: str) -> List[str]:
    """Why the Evaluator declined the model, one line per failed threshold, in words a reader
    of the console acts on: "sparse_categorical_accuracy=0.4100 below the lower bound 0.5".
    Empty when the evaluation wrote no validation result (no thresholds)."""
    import tensorflow_model_analysis as tfma

    try:
        result = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no validation result written (no thresholds)
        return []
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            value = failure.metric_value.double_value.value
            threshold = failure.metric_threshold
            if failure.metric_key.name == names.MAJORITY_LIFT:
                why = "(accuracy minus the most frequent class's share): no better than always answering that class"
            elif failure.metric_key.is_diff:
                why = f"fell below the baseline by more than {-threshold.change_threshold.absolute.value:.4g}"
            elif threshold.HasField("value_threshold"):
                why = f"below the lower bound {threshold.value_threshold.lower_bound.value:g}"
            else:
                why = failure.message.strip() or "threshold not met"
            name = failure.metric_key.name + (" change vs baseline" if failure.metric_key.is_diff else "")
            failures.append(f"{name}={value:.4f} {why}")
    return failures
