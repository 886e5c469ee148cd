"""bench/paper_tables.py: the cells' bookkeeping (status, records, the results page) and
the decision-tree cell on generated data. The Keras cells run through the pipeline in
tests/e2e/test_models_e2e.py."""

import importlib.util
import json
import os

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("paper_tables", os.path.join(REPO, "bench", "paper_tables.py"))
paper_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper_tables)


def test_status_labels_partial_runs():
    assert paper_tables.status_of(12, True, 100, None, False) == "complete: early stopping"
    assert paper_tables.status_of(100, False, 100, None, False) == "complete: 100 epochs"
    assert paper_tables.status_of(3, False, 3, None, False).startswith("partial: 3 epoch(s) (budget 3)")
    assert paper_tables.status_of(3, True, 3, 500, False) == "partial: at most 500 rows per split"
    assert paper_tables.status_of(3, False, 3, None, True) == "complete: 3 of 3 epochs"
    assert paper_tables.status_of(2, False, 3, None, True) == "partial: 2 of 3 epochs"


def test_cell_ids_separate_configs_and_subsets():
    assert paper_tables.cell_id("table1", "simple_cnn", None) == "table1-simple_cnn"
    assert paper_tables.cell_id("table5", "proposed_cnn", 300, optimizer="sgd", batch=32, lr=None) == \
        "table5-proposed_cnn-batch32-optimizersgd-rows300"


def test_decision_tree_cell_records_and_renders(demo_csv, tmp_path):
    run = paper_tables.run_decision_tree(demo_csv, seed=0)
    # Training's 240 rows less the validation carve (10 %, stratified per class)
    assert run["config"]["min_samples_split"] == 40 and 210 <= run["config"]["train_rows"] <= 222
    assert run["evaluation"]["examples"] == 30
    results = str(tmp_path / "r.jsonl")
    entry = paper_tables.record("table1", run, "python bench/paper_tables.py table1 ...", results)
    assert 0.0 <= entry["publictest_accuracy"] <= entry["publictest_top2_accuracy"] <= 1.0
    assert set(entry["per_class_recall"]) == set(paper_tables.features.CLASS_NAMES)
    assert json.loads(open(results).read())["model"] == "decision_tree"
    page = paper_tables.render_markdown(paper_tables.load_records(results))
    row = next(line for line in page.splitlines() if line.startswith("| ") and "decision_tree" in line and "min_samples" in line)
    assert f"{100 * entry['publictest_accuracy']:.2f}" in row and "30.84" in row and "complete" in row
    assert "| angry | disgust | fear | happy | sad | surprise | neutral |" in page


def test_missing_data_file_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        paper_tables.main(["table1", "--data", str(tmp_path / "nope.csv")])


def test_a_subset_row_says_where_its_validation_accuracy_was_measured():
    """Table V's --max-rows cells: their per-epoch validation accuracy is on the first N rows of
    the selecting split (PublicTest under the old protocol), not on the whole of it."""
    names = paper_tables.features.CLASS_NAMES
    record = {"table": "table5", "model": "proposed_cnn", "date": "d", "epochs_run": 2, "command": "c", "machine": "m",
              "config": {"optimizer": "sgd", "learning_rate": 1e-4, "batch_size": 32, "lr_schedule": "inverse_time"},
              "val_accuracy_per_epoch": [0.1, 0.2], "publictest_accuracy": 0.2, "publictest_top2_accuracy": 0.4,
              "status": paper_tables.status_of(2, False, 2, 2000, False),
              "per_class_recall": {name: 0.0 for name in names}}
    page = paper_tables.render_markdown([record])
    assert ("`val acc per epoch` was measured on the first 2000 rows of the split that selected them "
            "(PublicTest, under the old protocol)") in page
    assert "`PublicTest acc` and top-2 on all PublicTest rows" in page


def test_a_finished_pipeline_run_is_recorded_as_its_table1_cell(tmp_path, monkeypatch):
    run = tmp_path / "run"
    for path in (run / "serving_model" / "fer" / "1796052747", run / "pipeline_root" / "FerTrainer" / "model" / "8" / "Format-Serving",
                 run / "pipeline_root" / "FerTrainer" / "model" / "5" / "Format-Serving"):
        path.mkdir(parents=True)
    (run / "serving_model" / "fer" / "1796052747" / "saved_model.pb").write_bytes(b"graph 8")
    (run / "pipeline_root" / "FerTrainer" / "model" / "8" / "Format-Serving" / "saved_model.pb").write_bytes(b"graph 8")
    (run / "pipeline_root" / "FerTrainer" / "model" / "5" / "Format-Serving" / "saved_model.pb").write_bytes(b"graph 5")
    summary = {"model": "proposed_cnn", "config": {"epochs": 100, "optimizer": "adam", "checkpoint_dir": "x"},
               "parameters": 1, "fit_seconds": 12.34, "resumed_from_epoch": 9, "epochs_run": 16, "best_epoch": 12,
               "stopped_early": True, "history": [{"val_accuracy": 0.5, "val_top2_accuracy": 0.7}] * 16}
    (run / "pipeline_root" / "FerTrainer" / "model_run" / "8").mkdir(parents=True)
    (run / "pipeline_root" / "FerTrainer" / "model_run" / "8" / paper_tables.names.TRAINING_SUMMARY_FILE).write_text(
        json.dumps(summary))
    evaluated = []
    from tools import evaluate

    monkeypatch.setattr(evaluate, "evaluate", lambda path, data, usage: evaluated.append((path, usage)) or {"pushed": path})
    cell = paper_tables.run_from_pipeline(str(run), "data.csv")
    assert evaluated == [(str(run / "serving_model" / "fer" / "1796052747"), "PublicTest")]
    assert (cell["cell"], cell["model"], cell["status"], cell["selected_on"]) == (
        "table1-proposed_cnn", "proposed_cnn", "complete: early stopping", "valid")
    assert cell["epochs_run"] == 16 and cell["best_epoch"] == 12 and cell["sitting_seconds"] is None
    assert "checkpoint_dir" not in cell["config"] and cell["val_accuracy_per_epoch"] == [0.5] * 16
