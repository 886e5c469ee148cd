"""Headline results of each stage, read back from MLMD and the stage's output artifacts.

The local runner prints one line when a stage starts and one when it finishes with its
headline result; the same summaries come back to callers (CLI, tests) as a dict.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2

from models import names
from models.progress import format_duration


def node_outputs(store, pipeline_name: str, node_id: str):
    """(execution, {output_key: [artifact, ...]}) of the node's latest execution, or None."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    if not executions:
        return None
    execution = max(executions, key=lambda e: e.id)
    events = store.get_events_by_execution_ids([execution.id])
    outputs: Dict[str, List] = {}
    ids = {}
    for event in events:
        # Resolver nodes record what they resolved as INTERNAL_OUTPUT events.
        if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT,
                          metadata_store_pb2.Event.INTERNAL_OUTPUT):
            key = event.path.steps[0].key if event.path.steps else "?"
            ids[event.artifact_id] = key
    for artifact in store.get_artifacts_by_id(list(ids)):
        outputs.setdefault(ids[artifact.id], []).append(artifact)
    return execution, outputs


def _prop(artifact, name, default=None):
    if name in artifact.custom_properties:
        value = artifact.custom_properties[name]
        return getattr(value, value.WhichOneof("value"))
    if name in artifact.properties:
        value = artifact.properties[name]
        return getattr(value, value.WhichOneof("value"))
    return default


def _read_json(path: str) -> Optional[dict]:
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    """Overall-slice metrics from an Evaluator output, by metric name."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    metrics: Dict[str, float] = {}
    for slice_key, by_output in result.slicing_metrics:
        if slice_key != ():
            continue
        for by_sub_key in by_output.values():
            for sub_key, values in by_sub_key.items():
                for name, value in values.items():
                    if isinstance(value, dict) and "doubleValue" in value:
                        metrics[f"{name}{'/' + sub_key if sub_key else ''}"] = value["doubleValue"]
    return metrics


def validation_failures(evaluation_uri: str) -> List[str]:
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for details in result.metric_validations_per_slice:
        for failure in details.failures:
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


def metrics_headline(evaluation) -> str:
    """accuracy, top-2 and macro-F1 of an evaluation's overall slice."""
    metrics = overall_metrics(evaluation.uri) if evaluation is not None else {}
    acc = metrics.get(names.ACCURACY)
    top2 = metrics.get(names.TOP2_ACCURACY)
    f1 = metrics.get(names.MACRO_F1)
    parts = [f"accuracy {acc:.4f}" if acc is not None else "accuracy ?"]
    if top2 is not None:
        parts.append(f"top-2 {top2:.4f}")
    if f1 is not None:
        parts.append(f"macro-F1 {f1:.4f}")
    return ", ".join(parts)


def headline(node_id: str, outputs: Dict[str, List]) -> str:
    """One line describing what a stage produced."""
    one = lambda key: outputs.get(key, [None])[0]  # noqa: E731
    if node_id in ("FerExampleGen", "FerImageGen"):
        rejects = one("rejects")
        summary = _read_json(os.path.join(rejects.uri, names.REJECTS_SUMMARY_FILE)) if rejects else None
        if not summary:
            return "no summary"
        splits = ", ".join(f"{s} {summary['by_split'][s]}" for s in summary["splits"])
        text = f"{summary['rows']} rows: {summary['valid']} written ({splits}), {summary['rejected']} rejected"
        if summary["skipped"]:
            text += f", {summary['skipped']} beyond --max-rows"
        if summary["rejected"]:
            reasons = ", ".join(f"{k} {v}" for k, v in summary["by_reason"].items() if v)
            text += f" [{reasons}] -> {os.path.join(rejects.uri, names.REJECTS_FILE)}"
        if summary.get("duplicates") or summary.get("leaks"):  # image folders
            text += (f"; {summary['duplicates']} duplicate(s), {summary['leaks']} train/test leak(s) -> "
                     f"{os.path.join(rejects.uri, names.DUPLICATES_FILE)}")
        return text
    if node_id == "warm_start":  # --warm-start's Importer
        model = one("result")
        return f"fine-tuning from {model.uri}; the Evaluator's baseline" if model else "no model"
    if node_id == "ExampleValidator":
        anomalies = one("anomalies")
        return anomalies_headline(anomalies.uri) if anomalies else "no anomalies output"
    if node_id == "ClassBalanceCheck":
        from components.class_balance import logic

        balance = one("class_balance")
        return logic.headline(logic.read_report(balance.uri)) if balance else "no report"
    if node_id == "FerTrainer":
        run = one("model_run")
        summary = _read_json(os.path.join(run.uri, names.TRAINING_SUMMARY_FILE)) if run else None
        if not summary:
            return "no training summary"
        return (
            f"{summary['model']}: {summary['epochs_run']} epoch(s), best val accuracy "
            f"{summary['best_val_accuracy']:.4f} (epoch {summary['best_epoch']})"
            + (", stopped early" if summary["stopped_early"] else "")
            + (f"; the warm start's val accuracy was {summary['warm_start_val_accuracy']:.4f}"
               if summary.get("warm_start_val_accuracy") is not None else "")
            + (f"; resumed from epoch {summary['resumed_from_epoch']}, "
               f"{format_duration(summary['train_seconds_total'])} of training in {summary['pieces']} pieces"
               if summary.get("pieces", 1) > 1 else "")
        )
    if node_id == "latest_blessed_model_resolver":
        models = outputs.get("model", [])
        return f"baseline: model {models[0].id}" if models else "baseline: none (first blessed model wins on threshold alone)"
    if node_id == "Evaluator":
        evaluation, blessing = one("evaluation"), one("blessing")
        blessed = blessing is not None and _prop(blessing, names.BLESSED_PROPERTY, 0) == 1
        text = f"PublicTest (eval): {metrics_headline(evaluation)}" + (" -> BLESSED" if blessed else " -> NOT blessed")
        if not blessed and evaluation is not None:
            text += ": " + "; ".join(validation_failures(evaluation.uri) or ["see the evaluation output"])
        return text
    if node_id == "TestEvaluator":
        from components.fer_evaluator.component import SKIPPED_PROPERTY

        evaluation = one("evaluation")
        if evaluation is None or _prop(evaluation, SKIPPED_PROPERTY, 0) == 1:
            return "PrivateTest (test): no such rows in the data, not evaluated"
        return f"PrivateTest (test): {metrics_headline(evaluation)} (reported only)"
    if node_id == "Pusher":
        pushed = one("pushed_model")
        if pushed is not None and _prop(pushed, names.PUSHED_PROPERTY, 0) == 1:
            if _prop(pushed, names.REUSED_VERSION_PROPERTY, 0) == 1:
                return f"already served as {_prop(pushed, names.PUSHED_DESTINATION_PROPERTY, '?')} (identical model, not copied)"
            return f"pushed to {_prop(pushed, names.PUSHED_DESTINATION_PROPERTY, '?')}"
        return "nothing pushed (model not blessed)"
    if node_id == "ImportSchemaGen":
        schema = one("schema")
        return schema_headline(os.path.join(schema.uri, names.SCHEMA_FILE)) if schema else ""
    if node_id == "Transform":
        transformed = one("transformed_examples")
        return f"transformed {_prop(transformed, 'split_names', '?')}" if transformed else ""
    if node_id == "StatisticsGen":
        stats = one("statistics")
        return f"statistics for {_prop(stats, 'split_names', '?')}" if stats else ""
    return ""


def details(node_id: str, outputs: Dict[str, List]) -> dict:
    """Machine-readable results of the stages the runner's caller needs."""
    if node_id == "FerTrainer" and outputs.get("model") and outputs.get("model_run"):
        from tfx.utils import path_utils

        return {"model_path": path_utils.serving_model_path(outputs["model"][0].uri),
                "model_run_path": outputs["model_run"][0].uri}
    if node_id == "Evaluator" and outputs.get("blessing"):
        return {"blessed": _prop(outputs["blessing"][0], names.BLESSED_PROPERTY, 0) == 1}
    if node_id == "Pusher" and outputs.get("pushed_model"):
        pushed = outputs["pushed_model"][0]
        if _prop(pushed, names.PUSHED_PROPERTY, 0) == 1:
            return {"pushed_path": _prop(pushed, names.PUSHED_DESTINATION_PROPERTY),
                    "already_served": _prop(pushed, names.REUSED_VERSION_PROPERTY, 0) == 1}
    return {}


def schema_headline(path: str) -> str:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    import tensorflow as tf

    schema = text_format.Parse(tf.io.gfile.GFile(path).read(), schema_pb2.Schema())
    return "schema: " + ", ".join(f.name for f in schema.feature)


def anomalies_headline(uri: str) -> str:
    import glob

    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    for path in sorted(glob.glob(os.path.join(uri, "Split-*", "SchemaDiff.pb"))):
        anomalies = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        split = os.path.basename(os.path.dirname(path))[len("Split-") :]
        for feature, info in anomalies.anomaly_info.items():
            found.append(f"{split}/{feature}: {info.short_description}")
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(f"{split}: {anomalies.dataset_anomaly_info.short_description}")
    return "anomalies: none" if not found else f"anomalies ({len(found)}): " + "; ".join(found)


