"""The registry's stronger model with the Tuner, end to end on generated data: the Tuner
runs, its best hyperparameters train vgg_bn (augmentation, plateau schedule, flip TTA), the
pushed model serves; then bench/paper_tables.py runs its cells in the same run directory."""

import glob
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tuned_run(demo_csv, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("tuned"))
    stdout, finished = run_cli(demo_csv, output, "--model", "vgg_bn", "--tune", "--tune-trials", "2",
                               "--tune-epochs", "1", "--accuracy-threshold", "0.0")
    return output, stdout, finished


def _only(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_tuner_runs_and_its_best_hyperparameters_train_the_model(tuned_run):
    output, stdout, finished = tuned_run
    assert finished["Tuner"] != "cached" and "FerTrainer" in finished
    root = os.path.join(output, "pipeline_root")
    best = json.load(open(_only(os.path.join(root, "Tuner", "best_hyperparameters", "*", "best_hyperparameters.txt"))))
    values = best["values"]
    assert values["optimizer"] in ("adam", "rmsprop", "sgd") and values["batch_size"] in (32, 64, 96, 128)
    summary = json.load(open(_only(os.path.join(root, "FerTrainer", "model_run", "*", "training_summary.json"))))
    config = summary["config"]
    assert (config["optimizer"], config["batch_size"]) == (values["optimizer"], values["batch_size"])
    assert config["learning_rate"] == pytest.approx(values["learning_rate"])
    assert summary["model"] == "vgg_bn" and config["augment"] and config["tta"] and config["lr_schedule"] == "plateau"
    assert "[Trainer] the Tuner's best: optimizer " + values["optimizer"] in stdout


def test_trained_vgg_bn_evaluates_through_serving_default(tuned_run, demo_csv):
    # One epoch on 300 rows does not beat the majority class, so nothing is pushed: the
    # Trainer's exported model (the same SavedModel the Pusher copies) is evaluated instead.
    output = tuned_run[0]
    assert not glob.glob(os.path.join(output, "serving_model", "fer", "*"))
    version = _only(os.path.join(output, "pipeline_root", "FerTrainer", "model", "*", "Format-Serving"))
    result = subprocess.run([sys.executable, "-m", "cli.main", "evaluate", "--model", version, "--data", demo_csv,
                             "--json"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["examples"] == 30 and 0.0 <= report["accuracy"] <= report["top2_accuracy"] <= 1.0


def test_decision_tree_is_refused_by_the_pipeline_with_a_pointer(demo_csv, tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli.main", "run", "--data", demo_csv, "--output", str(tmp_path),
                             "--model", "decision_tree"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 1
    assert "scikit-learn" in result.stderr and "bench/paper_tables.py" in result.stderr
    assert not os.path.exists(tmp_path / "pipeline_root")  # refused before any stage ran


def test_paper_tables_bench_runs_keras_cells_through_the_pipeline(tuned_run, demo_csv, tmp_path):
    output = tuned_run[0]
    results = str(tmp_path / "paper.jsonl")
    cmd = [sys.executable, "bench/paper_tables.py", "table1", "--data", demo_csv, "--output", output,
           "--models", "feedforward", "--epochs", "2", "--results", results]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "<== Transform [cached]" in first.stdout  # the tuned run's data stages are reused
    # a second sitting with a larger budget resumes the cell from its checkpoint
    cmd[cmd.index("--epochs") + 1] = "3"
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    records = [json.loads(line) for line in open(results)]
    assert [(r["model"], r["epochs_run"], r["resumed_from_epoch"]) for r in records] == [
        ("feedforward", 2, 0), ("feedforward", 3, 2)]
    assert len(records[1]["val_accuracy_per_epoch"]) == 3 and records[1]["publictest_examples"] == 30
    page = open(results.replace(".jsonl", ".md")).read()
    assert page.count("| feedforward |") == 4  # two sittings, in the model table and the recall table


def test_tta_gain_bench_reads_the_trained_checkpoint(tuned_run, demo_csv):
    checkpoint = os.path.join(tuned_run[0], "checkpoints", "vgg_bn")
    result = subprocess.run([sys.executable, "bench/tta_gain.py", "--checkpoint", checkpoint, "--model", "vgg_bn",
                             "--data", demo_csv], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["examples"] == 30
    assert report["accuracy_gain"] == pytest.approx(report["flip_tta"]["accuracy"] - report["faces_only"]["accuracy"])
