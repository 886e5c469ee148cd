"""Fine-tuning end to end: the shipped model (trained on FER-2013 photos) fine-tuned through the
pipeline on 200 generated faces, a drawn style it has never seen, given as a folder of images.
The Trainer starts from the warm start (TFX's base_model input); its accuracy on the folder's
valid split must rise above the warm start's; the Evaluator blesses against the warm start."""

import glob
import json
import os
import re

import pytest

from core import features
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


def test_fine_tuning_the_shipped_model_on_a_new_style_of_faces(tmp_path):
    from tools import demo_data

    tree = tmp_path / "faces"
    demo_data.write_demo_tree(str(tree), 200, seed=21, with_usage=False)  # DIR/<emotion>/*: 80/10/10
    output = str(tmp_path / "run")
    stdout, finished = run_cli(str(tree), output, "--warm-start", "shipped", "--epochs", "8",
                               "--accuracy-threshold", "0")
    assert "warm_start" in finished and "latest_blessed_model_resolver" not in finished
    (summary_path,) = glob.glob(os.path.join(output, "pipeline_root", "FerTrainer", "model_run", "*",
                                             "training_summary.json"))
    summary = json.load(open(summary_path))
    assert summary["model"] == features.SHIPPED_MODEL_NAME  # read from the warm start's weights
    assert summary["config"]["learning_rate"] == 1e-4  # the fine-tuning recipe's
    assert summary["best_val_accuracy"] > summary["warm_start_val_accuracy"], summary
    assert re.search(r"<== FerTrainer .* the warm start's val accuracy was 0\.\d+", stdout)
    # The Evaluator's baseline is the warm start, so a fine-tune that got worse is not pushed.
    assert re.search(r"<== warm_start .* fine-tuning from .*" + features.SHIPPED_MODEL_NAME + r"/\d+, copied to .*warm_start/model/\d+; the Evaluator's baseline", stdout)
    (evaluation,) = glob.glob(os.path.join(output, "pipeline_root", "Evaluator", "evaluation", "*", "eval_config.json"))
    locations = json.load(open(evaluation))["modelLocations"]
    (staged,) = glob.glob(os.path.join(output, "pipeline_root", "warm_start", "model", "*", "Format-Serving"))
    assert locations["baseline"] == staged and "FerTrainer" in locations["candidate"]


def test_a_fine_tune_that_got_worse_is_not_pushed(tmp_path):
    """A learning rate that wrecks the weights: the Evaluator compares the result with the warm
    start, declines it, and nothing is pushed."""
    from tools import demo_data

    tree = tmp_path / "faces"
    demo_data.write_demo_tree(str(tree), 200, seed=22, with_usage=False)
    output = str(tmp_path / "run")
    stdout, _ = run_cli(str(tree), output, "--warm-start", "shipped", "--epochs", "1", "--learning-rate", "5",
                        "--accuracy-threshold", "0")
    assert re.search(r"<== Evaluator .* -> NOT blessed", stdout), stdout
    assert "Model NOT blessed: nothing was pushed" in stdout
    assert not glob.glob(os.path.join(output, "serving_model", "fer", "*"))
