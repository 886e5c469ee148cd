"""pipeline/run_reader.py on a hand-made run: an MLMD store with the executions and artifacts a
run records, and an Evaluator output written as TFMA writes it (metrics, plots and validation
records). The real-run checks are tests/dashboard and tests/e2e."""

import json

import numpy as np
import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from core import features, names
from pipeline import run_reader


def _store(path):
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


class _Run:
    """Records executions of pipeline "fer" as the local runner does: one node context each, its
    outputs as OUTPUT events keyed by the output's name."""

    def __init__(self, path):
        self.store = _store(path)
        self.node_type = self.store.put_context_type(mlmd.ContextType(name="node"))
        self.nodes = {}

    def artifact(self, type_name, uri, **custom):
        type_id = self.store.put_artifact_type(mlmd.ArtifactType(name=type_name))
        artifact = mlmd.Artifact(type_id=type_id, uri=uri, state=mlmd.Artifact.LIVE)
        for key, value in custom.items():
            if isinstance(value, int):
                artifact.custom_properties[key].int_value = value
            else:
                artifact.custom_properties[key].string_value = value
        return artifact

    def execute(self, node_id, state=mlmd.Execution.COMPLETE, **outputs):
        type_id = self.store.put_execution_type(mlmd.ExecutionType(name=node_id))
        if node_id not in self.nodes:
            [self.nodes[node_id]] = self.store.put_contexts([mlmd.Context(type_id=self.node_type,
                                                                          name=f"fer.{node_id}")])
        execution = mlmd.Execution(type_id=type_id, last_known_state=state)
        events = []
        for key, artifact in outputs.items():
            event = mlmd.Event(type=mlmd.Event.OUTPUT)
            event.path.steps.add().key = key
            events.append((artifact, event))
        context = mlmd.Context(id=self.nodes[node_id], type_id=self.node_type, name=f"fer.{node_id}")
        execution_id, artifact_ids, _ = self.store.put_execution(execution, events, [context])
        return execution_id, artifact_ids


def test_a_directory_without_a_run_is_one_line():
    with pytest.raises(run_reader.RunError, match="no metadata.sqlite; is this a `fer-pipeline run --output`"):
        run_reader.open_run("/nonexistent")


def test_a_file_that_is_no_store_is_one_line(tmp_path):
    (tmp_path / "metadata.sqlite").write_bytes(b"")
    with pytest.raises(run_reader.RunError, match="not a pipeline run's metadata .* whose run has started"):
        run_reader.latest_artifacts(str(tmp_path))


def test_executions_their_stage_state_and_time(tmp_path):
    run = _Run(tmp_path / "metadata.sqlite")
    first, _ = run.execute("StatisticsGen")
    store = run_reader.open_store(str(tmp_path / "metadata.sqlite"))
    assert run_reader.last_execution_id(store) == first
    second, _ = run.execute("Transform", state=mlmd.Execution.CACHED)
    third, _ = run.execute("Trainer", state=mlmd.Execution.FAILED)
    later = run_reader.executions_after(store, first)
    assert [e.id for e in later] == [second, third]
    assert [run_reader.node_of(store, "fer", e.id) for e in later] == ["Transform", "Trainer"]
    assert run_reader.node_of(store, "other", second) is None
    assert [(run_reader.is_finished(e), run_reader.is_cached(e), run_reader.is_failed(e)) for e in later] == [
        (True, True, False), (False, False, True)]
    # MLMD stamps both times itself; the stage's time is their difference, never negative.
    assert run_reader.seconds(mlmd.Execution(create_time_since_epoch=1000, last_update_time_since_epoch=3500)) == 2.5
    assert run_reader.seconds(mlmd.Execution(create_time_since_epoch=1000, last_update_time_since_epoch=900)) == 0.0


def test_the_latest_evaluation_of_each_split_its_blessing_and_the_class_balance(tmp_path):
    run = _Run(tmp_path / "metadata.sqlite")
    eval_splits, test_splits = json.dumps([features.EVAL_SPLIT]), json.dumps([features.TEST_SPLIT])

    def evaluate(node_id, uri, splits, verdict):
        evaluation = run.artifact("ModelEvaluation", uri, **{names.EXAMPLE_SPLITS_PROPERTY: splits})
        blessing = run.artifact("ModelBlessing", uri + "-blessing", **{names.BLESSED_PROPERTY: verdict})
        return run.execute(node_id, evaluation=evaluation, blessing=blessing)

    run.execute("ClassBalanceCheck", class_balance=run.artifact("fer_artifacts.ClassBalance", "/r/balance"))
    evaluate("Evaluator", "/r/eval1", eval_splits, 1)
    evaluate("TestEvaluator", "/r/test1", test_splits, 0)
    evaluate("Evaluator", "/r/eval2", eval_splits, 0)  # the later run declined its candidate
    found = run_reader.latest_artifacts(str(tmp_path))
    assert found == {"evaluation": "/r/eval2", "blessed": False, "class_balance": "/r/balance",
                     "test_evaluation": "/r/test1"}
    store = run_reader.open_store(str(tmp_path / "metadata.sqlite"))
    execution, outputs = run_reader.node_outputs(store, "fer", "Evaluator")
    assert sorted(outputs) == ["blessing", "evaluation"] and outputs["evaluation"][0].uri == "/r/eval2"
    assert run_reader.blessed(outputs["blessing"][0]) is False and run_reader.blessed(None) is None
    assert run_reader.prop(outputs["evaluation"][0], names.EXAMPLE_SPLITS_PROPERTY) == eval_splits
    assert run_reader.prop(outputs["evaluation"][0], "absent", "?") == "?"
    assert run_reader.node_outputs(store, "fer", "Pusher") is None


def test_a_run_without_an_evaluation_says_so(tmp_path):
    _Run(tmp_path / "metadata.sqlite").execute("StatisticsGen")
    with pytest.raises(run_reader.RunError, match="no Evaluator output yet"):
        run_reader.latest_artifacts(str(tmp_path))


# ---- an Evaluator output, written as TFMA writes it ---------------------------------------

def _write(path, records):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())


def _metric(record, name, value, model="", class_id=None, is_diff=False):
    item = record.metric_keys_and_values.add()
    item.key.name, item.key.model_name, item.key.is_diff = name, model, is_diff
    if class_id is not None:
        item.key.sub_key.class_id.value = class_id
    item.value.double_value.value = value


def _slice(record, **pairs):
    for column, value in pairs.items():
        record.slice_key.single_slice_keys.add(column=column, int64_value=value)
    return record


def test_metrics_per_slice_and_model_with_the_confusion_matrix(tmp_path):
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as tfma_pb2

    overall = tfma_pb2.MetricsForSlice()
    _metric(overall, names.EXAMPLE_COUNT, 4.0)
    _metric(overall, names.ACCURACY, 0.75, "candidate")
    _metric(overall, names.ACCURACY, 0.5, "baseline")
    _metric(overall, names.ACCURACY, 0.25, "candidate", is_diff=True)  # a diff is no model's value
    _metric(overall, "recall", 1.0, "candidate", class_id=3)
    _metric(overall, names.MACRO_F1, float("nan"), "candidate")
    happy = _slice(tfma_pb2.MetricsForSlice(), **{features.LABEL_KEY: 3})
    _metric(happy, names.EXAMPLE_COUNT, 2.0)
    plots = tfma_pb2.PlotsForSlice()
    item = plots.plot_keys_and_values.add()
    item.key.model_name = "candidate"
    matrix = item.value.multi_class_confusion_matrix_at_thresholds.matrices.add()
    matrix.entries.add(actual_class_id=3, predicted_class_id=3, num_weighted_examples=3.0)
    matrix.entries.add(actual_class_id=0, predicted_class_id=3, num_weighted_examples=1.0)
    _write(tmp_path / "metrics.tfrecord", [overall, happy])
    _write(tmp_path / "plots.tfrecord", [plots])

    slices, models = run_reader.read_evaluation(str(tmp_path))
    assert models == [run_reader.CANDIDATE, run_reader.BASELINE]
    assert set(slices) == {(), ((features.LABEL_KEY, 3),)}
    top = slices[()]
    assert top.get(names.ACCURACY) == 0.75 and top.get(names.ACCURACY, run_reader.BASELINE) == 0.5
    assert top.get("recall", class_id=3) == 1.0 and top.get(names.MACRO_F1) is None  # NaN: no value
    assert top.count() == 4 and slices[((features.LABEL_KEY, 3),)].count() == 2
    expected = np.zeros((features.NUM_CLASSES, features.NUM_CLASSES))
    expected[3, 3], expected[0, 3] = 3, 1
    assert (top.confusion[run_reader.CANDIDATE] == expected).all()
    assert run_reader.overall(str(tmp_path)).confusion == {}  # the headline reads no plots
    assert run_reader.overall(str(tmp_path / "empty")) is None


def test_validation_failures_say_why_in_one_line_each(tmp_path):
    from tensorflow_model_analysis.proto import validation_result_pb2

    result = validation_result_pb2.ValidationResult(validation_ok=False)
    failures = result.metric_validations_per_slice.add().failures
    bound = failures.add()
    bound.metric_key.name = names.ACCURACY
    bound.metric_value.double_value.value = 0.41
    bound.metric_threshold.value_threshold.lower_bound.value = 0.5
    regression = failures.add()
    regression.metric_key.name, regression.metric_key.is_diff = names.ACCURACY, True
    regression.metric_value.double_value.value = -0.031
    regression.metric_threshold.change_threshold.absolute.value = -0.01
    majority = failures.add()
    majority.metric_key.name = names.MAJORITY_LIFT
    majority.metric_value.double_value.value = -0.02
    majority.metric_threshold.value_threshold.lower_bound.value = 1e-9
    _write(tmp_path / "validations.tfrecord", [result])

    assert run_reader.validation_failures(str(tmp_path)) == [
        f"{names.ACCURACY}=0.4100 below the lower bound 0.5",
        f"{names.ACCURACY} change vs baseline=-0.0310 fell below the baseline by more than 0.01",
        f"{names.MAJORITY_LIFT}=-0.0200 (accuracy minus the most frequent class's share): no better than always "
        "answering that class",
    ]
    assert run_reader.validation_failures(str(tmp_path / "no-thresholds")) == []
