"""Distillation end to end: `fer-pipeline run --teacher shipped` on a folder of generated faces.
Teacher copies the shipped model into a Model artifact, FerTrainer's `teacher` input hands its
members to run_fn, the student trains on blended targets and the console reports the teacher."""

import glob
import json
import os
import re

import pytest

from core import features
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


def test_a_student_distils_from_the_shipped_model_through_the_pipeline(tmp_path):
    from tools import demo_data

    tree = tmp_path / "faces"
    demo_data.write_demo_tree(str(tree), 120, seed=23, with_usage=False)
    output = str(tmp_path / "run")
    stdout, finished = run_cli(str(tree), output, "--teacher", "shipped", "--distill-alpha", "0.8",
                               "--distill-temperature", "2", "--accuracy-threshold", "0")
    assert "teacher" in finished and "latest_blessed_model_resolver" in finished
    (member,) = glob.glob(os.path.join(output, "pipeline_root", "teacher", "model", "*", "members", "00"))
    assert os.path.isfile(os.path.join(member, "saved_model.pb"))
    assert re.search(r"^Teacher: .*" + features.SHIPPED_MODEL_NAME + r"/\d+$", stdout, re.M)  # pinned version
    assert re.search(r"<== teacher .* 1 model\(s\) to distil from \(.*" + features.SHIPPED_MODEL_NAME, stdout)
    (summary_path,) = glob.glob(os.path.join(output, "pipeline_root", "FerTrainer", "model_run", "*",
                                             "training_summary.json"))
    summary = json.load(open(summary_path))
    assert [m["model"] for m in summary["teacher"]] == [features.SHIPPED_MODEL_NAME]
    assert summary["teacher"][0]["saved_model"] == member
    assert (summary["config"]["distill_alpha"], summary["config"]["distill_temperature"]) == (0.8, 2.0)
    assert 0 <= summary["teacher_val_accuracy"] <= 1
    assert "training targets 0.2 x labels + 0.8 x teacher at temperature 2" in stdout
    assert re.search(r"<== FerTrainer .* the teacher's val accuracy was 0\.\d+", stdout)
    assert "Evaluator" in finished and "Pusher" in finished  # the student is judged like any other
