"""The run report's one-line stage headlines."""

import json
import types

from core import names
from pipeline import run_report


def _trainer_headline(tmp_path, **summary):
    base = {"model": "compact_resnet", "epochs_run": 60, "best_val_accuracy": 0.6651, "best_epoch": 57,
            "stopped_early": False}
    (tmp_path / names.TRAINING_SUMMARY_FILE).write_text(json.dumps({**base, **summary}))
    return run_report.headline("FerTrainer", {"model_run": [types.SimpleNamespace(uri=str(tmp_path))]})


def test_the_trainer_line_of_a_run_in_one_piece(tmp_path):
    line = _trainer_headline(tmp_path, pieces=1, resumed_from_epoch=0, train_seconds_total=3000.0)
    assert line == "compact_resnet: 60 epoch(s), best val accuracy 0.6651 (epoch 57)"


def test_the_trainer_line_of_a_resumed_run_sums_the_training_time_of_every_piece(tmp_path):
    line = _trainer_headline(tmp_path, pieces=3, resumed_from_epoch=41, train_seconds_total=3725.0)
    assert line.endswith("; resumed from epoch 41, 1h 02m of training in 3 pieces")


def test_split_names_are_shown_in_the_pipelines_order_whatever_order_was_recorded():
    from ml_metadata.proto import metadata_store_pb2

    artifact = metadata_store_pb2.Artifact()
    artifact.properties["split_names"].string_value = '["eval", "train", "valid"]'
    assert run_report.split_names(artifact) == '["train", "valid", "eval"]'
    assert run_report.headline("Transform", {"transformed_examples": [artifact]}) == 'transformed ["train", "valid", "eval"]'
    assert run_report.split_names(metadata_store_pb2.Artifact()) == "?"


def test_held_out_splits_are_named_for_the_data_they_came_from():
    assert run_report.headline("TestEvaluator", {}) == "PrivateTest (test): no such rows in the data, not evaluated"
    assert run_report.headline("TestEvaluator", {}, run_report.FOLDER_HELD_OUT) == (
        "test: no such rows in the data, not evaluated")
