"""Headline results of each stage, from its output artifacts (found and read through
pipeline/run_reader.py, the one reader of a run).

The local runner prints one line when a stage starts and one when it finishes with its
headline result; the same summaries come back to callers (CLI, tests) as a dict.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from core import features, names
from core.progress import format_duration
from pipeline import run_reader


def _read_json(path: str) -> Optional[dict]:
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def metrics_headline(evaluation) -> str:
    """accuracy, top-2 and macro-F1 of an evaluation's overall slice."""
    overall = run_reader.overall(evaluation.uri) if evaluation is not None else None
    acc, top2, f1 = ((overall.get(name) if overall else None)
                     for name in (names.ACCURACY, names.TOP2_ACCURACY, names.MACRO_F1))
    parts = [f"accuracy {acc:.4f}" if acc is not None else "accuracy ?"]
    if top2 is not None:
        parts.append(f"top-2 {top2:.4f}")
    if f1 is not None:
        parts.append(f"macro-F1 {f1:.4f}")
    return ", ".join(parts)


# What the held-out splits are called on the console: FER-2013's CSV maps its Usage column to
# them; an image folder's eval and test are the user's own folders (or carve), not FER-2013's.
CSV_HELD_OUT = {"eval": "PublicTest (eval)", "test": "PrivateTest (test)"}
FOLDER_HELD_OUT = {"eval": "eval", "test": "test"}


def headline(node_id: str, outputs: Dict[str, List], held_out: Dict[str, str] = CSV_HELD_OUT) -> str:
    """One line describing what a stage produced (`held_out`: the eval and test splits' names)."""
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
    if node_id == "warm_start":  # --warm-start's WarmStart
        model = one("model")
        if not model:
            return "no model"
        source = run_reader.prop(model, names.WARM_START_SAVED_MODEL_PROPERTY, "?")
        return f"fine-tuning from {source}, copied to {model.uri}; the Evaluator's baseline"
    if node_id == "teacher":  # --teacher's Teacher
        model = one("model")
        if not model:
            return "no model"
        members = json.loads(run_reader.prop(model, names.TEACHER_SAVED_MODELS_PROPERTY, "[]"))
        return f"{len(members)} model(s) to distil from ({', '.join(members)}), copied to {model.uri}"
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
            + (f"; the teacher's val accuracy was {summary['teacher_val_accuracy']:.4f}"
               if summary.get("teacher_val_accuracy") is not None else "")
            + (f"; resumed from epoch {summary['resumed_from_epoch']}, "
               f"{format_duration(summary['train_seconds_total'])} of training in {summary['pieces']} pieces"
               if summary.get("pieces", 1) > 1 else "")
        )
    if node_id == "latest_blessed_model_resolver":
        models = outputs.get("model", [])
        return f"baseline: model {models[0].id}" if models else "baseline: none (first blessed model wins on threshold alone)"
    if node_id == "Evaluator":
        evaluation, blessing = one("evaluation"), one("blessing")
        blessed = run_reader.blessed(blessing) is True
        text = f"{held_out['eval']}: {metrics_headline(evaluation)}" + (" -> BLESSED" if blessed else " -> NOT blessed")
        if not blessed and evaluation is not None:
            text += ": " + "; ".join(run_reader.validation_failures(evaluation.uri) or ["see the evaluation output"])
        return text
    if node_id == "TestEvaluator":
        from components.fer_evaluator.component import SKIPPED_PROPERTY

        evaluation = one("evaluation")
        if evaluation is None or run_reader.prop(evaluation, SKIPPED_PROPERTY, 0) == 1:
            return f"{held_out['test']}: no such rows in the data, not evaluated"
        return f"{held_out['test']}: {metrics_headline(evaluation)} (reported only)"
    if node_id == "Pusher":
        pushed = one("pushed_model")
        if pushed is not None and run_reader.prop(pushed, names.PUSHED_PROPERTY, 0) == 1:
            destination = run_reader.prop(pushed, names.PUSHED_DESTINATION_PROPERTY, "?")
            if run_reader.prop(pushed, names.REUSED_VERSION_PROPERTY, 0) == 1:
                return f"already served as {destination} (identical model, not copied)"
            return f"pushed to {destination}"
        return "nothing pushed (model not blessed)"
    if node_id == "ImportSchemaGen":
        schema = one("schema")
        return schema_headline(os.path.join(schema.uri, names.SCHEMA_FILE)) if schema else ""
    if node_id == "Transform":
        transformed = one("transformed_examples")
        return f"transformed {split_names(transformed)}" if transformed else ""
    if node_id == "StatisticsGen":
        stats = one("statistics")
        return f"statistics for {split_names(stats)}" if stats else ""
    return ""


def split_names(artifact) -> str:
    """An artifact's splits in the pipeline's order (train, valid, eval, test), whatever order
    the component recorded them in (Transform's varies from run to run)."""
    recorded = run_reader.prop(artifact, "split_names", None)
    try:
        splits = json.loads(recorded)
    except (TypeError, ValueError):
        return "?" if recorded is None else str(recorded)
    order = {name: i for i, name in enumerate(features.SPLITS)}
    return json.dumps(sorted(splits, key=lambda name: (order.get(name, len(order)), name)))


def details(node_id: str, outputs: Dict[str, List]) -> dict:
    """Machine-readable results of the stages the runner's caller needs."""
    if node_id == "FerTrainer" and outputs.get("model") and outputs.get("model_run"):
        from tfx.utils import path_utils

        return {"model_path": path_utils.serving_model_path(outputs["model"][0].uri),
                "model_run_path": outputs["model_run"][0].uri}
    if node_id == "Evaluator" and outputs.get("blessing"):
        return {"blessed": run_reader.blessed(outputs["blessing"][0]) is True}
    if node_id == "Pusher" and outputs.get("pushed_model"):
        pushed = outputs["pushed_model"][0]
        if run_reader.prop(pushed, names.PUSHED_PROPERTY, 0) == 1:
            return {"pushed_path": run_reader.prop(pushed, names.PUSHED_DESTINATION_PROPERTY),
                    "already_served": run_reader.prop(pushed, names.REUSED_VERSION_PROPERTY, 0) == 1}
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


