"""bench/ship_model.py's bookkeeping: which Trainer execution a pushed model came from, and
what the card says about the data and the cost (the shipped card itself is re-measured in
tests/models/test_shipped_model.py)."""

import importlib.util
import os

import pytest

from core import features, names
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("ship_model", os.path.join(REPO, "bench", "ship_model.py"))
ship_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship_model)


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_the_summary_is_the_one_of_the_execution_that_exported_the_pushed_model(tmp_path):
    run = tmp_path / "run"
    trainer = run / "pipeline_root" / "FerTrainer"
    _write(str(trainer / "model" / "8" / "Format-Serving" / "saved_model.pb"), b"graph of execution 8")
    _write(str(trainer / "model" / "12" / "Format-Serving" / "saved_model.pb"), b"graph of execution 12")
    pushed = run / "serving_model" / "fer" / "1796000000"
    _write(str(pushed / "saved_model.pb"), b"graph of execution 8")  # pushed before execution 12 was trained
    assert ship_model.trainer_execution_of(str(pushed), str(run)) == str(trainer / "model_run" / "8")
    _write(str(pushed / "saved_model.pb"), b"a graph no execution exported")
    with pytest.raises(SystemExit, match="no FerTrainer execution"):
        ship_model.trainer_execution_of(str(pushed), str(run))


def _result(examples):
    per_class = {name: {"support": 1, "recall": 0.5, "precision": 0.5} for name in features.CLASS_NAMES}
    return {"examples": examples, "accuracy": 0.7, names.TOP2_ACCURACY: 0.86, names.MACRO_F1: 0.66,
            "per_class": per_class, "confusion_matrix": [[0] * features.NUM_CLASSES] * features.NUM_CLASSES}


def _card(private):
    return {"model": "compact_resnet_v2", "source": ship_model.model_source("compact_resnet_v2"), "version": "1", "shipped_bytes": 5_000_000, "parameters": 930_919,
            "cost": {"forward_passes": 1, "multiply_adds_per_face": 75_700_000,
                     "paper_cnn_multiply_adds_per_face": 353_800_000},
            "data": "fer2013.csv.gz", "train_command": "fer-pipeline run", "train_commit": "abc", "config": {"tta": False},
            "epochs_run": 100, "best_epoch": 97, "stopped_early": False, "training_wall_seconds": 6000.0,
            "training_pieces": 2, "time_to_paper_accuracy": None, "history": [], "measured": "2026-11-30",
            "machine": "vm, 2 cores", "evaluation": {"PublicTest": _result(3589), "valid": _result(2872),
                                                    "PrivateTest": private}}


def test_the_card_states_the_splits_and_the_cost_as_measured():
    text = ship_model.render_card(_card({"not_measured": "no PrivateTest rows"}), [])
    assert "this copy has no PrivateTest" in text
    assert "`valid` (2872 rows" in text and "90 %" not in text
    assert "75.7 M multiply-adds per face" in text and "1 forward pass(es)" in text and "1/4.7 of" in text
    assert "in 2 piece(s)" in text
    text = ship_model.render_card(_card(_result(3589)), [])
    assert "no PrivateTest" not in text and "and PrivateTest." in text


def test_the_card_names_the_file_and_widths_a_catalogue_variant_is_built_from():
    assert ship_model.model_source("proposed_cnn") == "models/proposed_cnn.py"
    assert ship_model.model_source("compact_resnet_v2").startswith("models/compact_resnet.py built with {")
    assert "(models/compact_resnet.py built with" in ship_model.render_card(_card({"not_measured": "none"}), [])
