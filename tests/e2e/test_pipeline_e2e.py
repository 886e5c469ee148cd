"""The whole pipeline on generated data, through the CLI a user runs (the `runs` fixture,
tests/conftest.py).

Run 1 executes every stage and pushes; run 2 (same inputs) takes every stage up to the
Trainer from the cache and does not push the same model again; run 3 raises the blessing
bound: the Evaluator re-runs against the blessed baseline, declines, and nothing new is pushed.
"""

import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from models import features

pytestmark = pytest.mark.e2e

STAGES = [
    "FerExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ClassBalanceCheck",
    "Transform", "FerTrainer", "latest_blessed_model_resolver", "Evaluator", "Pusher",
]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_stage_executed_and_reported(runs):
    output, (stdout, finished), _, _ = runs
    assert set(finished) == set(STAGES)
    assert all(tag != "cached" for tag in finished.values())
    for stage in STAGES:
        assert f"==> {stage} ..." in stdout
    assert re.search(r"<== FerExampleGen .* 300 rows: 300 written \(train 240, eval 30, test 30\), 0 rejected", stdout)
    assert re.search(r"<== ClassBalanceCheck .* under-represented: .*disgust", stdout)
    assert re.search(r"<== ExampleValidator .* anomalies: none", stdout)
    assert re.search(r"<== FerTrainer .* proposed_cnn: 1 epoch\(s\), best val accuracy 0\.\d+", stdout)
    assert re.search(r"<== Evaluator .* accuracy 0\.\d+, top-2 0\.\d+, macro-F1 0\.\d+ -> BLESSED", stdout)
    assert "Model blessed and pushed:" in stdout
    assert os.path.exists(os.path.join(output, "metadata.sqlite"))


def test_stage_outputs_exist(runs):
    root = os.path.join(runs[0], "pipeline_root")
    for split in ("train", "eval", "test"):
        assert glob.glob(f"{root}/FerExampleGen/examples/*/Split-{split}/*.gz")
    assert glob.glob(f"{root}/FerExampleGen/rejects/*/rejects.csv")
    assert glob.glob(f"{root}/StatisticsGen/statistics/*/Split-train/FeatureStats.pb")
    assert glob.glob(f"{root}/ClassBalanceCheck/class_balance/*/class_balance.json")
    assert glob.glob(f"{root}/Transform/transform_graph/*/transform_fn/saved_model.pb")
    assert glob.glob(f"{root}/FerTrainer/model_run/*/training_summary.json")
    assert glob.glob(f"{root}/Evaluator/evaluation/*/metrics*")


def test_pushed_model_serves_probabilities_for_raw_pixels(runs):
    import tensorflow as tf

    versions = glob.glob(os.path.join(runs[0], "serving_model", "fer", "*"))
    assert len(versions) == 1 and os.path.basename(versions[0]).isdigit()  # TF Serving layout
    serve = tf.saved_model.load(versions[0]).signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, (4,) + features.IMAGE_SHAPE).astype(np.uint8)
    probabilities = serve(image=tf.constant(images))["probabilities"].numpy()
    assert probabilities.shape == (4, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


def test_second_run_is_cached(runs):
    _, _, (stdout, finished), _ = runs
    # The Evaluator's baseline input changed (run 1's model is now the latest blessed), so
    # by TFX design it evaluates again; everything upstream comes from the cache, and the
    # same model is not pushed twice.
    reused = set(STAGES) - {"latest_blessed_model_resolver", "Evaluator", "Pusher"}
    assert {s: finished[s] for s in reused} == {s: "cached" for s in reused}
    assert re.search(r"<== Evaluator .* -> BLESSED", stdout)
    assert re.search(r"<== Pusher .* already served as .*serving_model/fer/\d+ \(identical model, not copied\)", stdout)
    assert "Model blessed; the same model is already served:" in stdout
    assert len(glob.glob(os.path.join(runs[0], "serving_model", "fer", "*"))) == 1


def test_unblessed_model_is_not_pushed(runs):
    _, _, _, (stdout, finished) = runs
    assert finished["FerTrainer"] == "cached" and finished["Evaluator"] != "cached"
    assert re.search(r"<== latest_blessed_model_resolver .* baseline: model \d+", stdout)
    assert re.search(r"<== Evaluator .* -> NOT blessed: sparse_categorical_accuracy=", stdout)
    assert re.search(r"<== Pusher .* nothing pushed", stdout)
    assert "Model NOT blessed: nothing was pushed" in stdout
    assert len(glob.glob(os.path.join(runs[0], "serving_model", "fer", "*"))) == 1


def test_too_many_rejects_fail_the_run_with_a_clear_message(tmp_path):
    pixels = " ".join(["9"] * features.NUM_PIXELS)
    csv = tmp_path / "bad.csv"
    csv.write_text("emotion,pixels,Usage\n" + f"3,{pixels},Training\n" * 6 + f"2,{pixels},PublicTest\n" * 2
                   + "8,1 2 3,Training\n" * 2)
    output = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "cli.main", "run", "--data", str(csv), "--output", str(output)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 1
    assert "error: the pipeline run failed: RejectThresholdExceeded:" in result.stderr
    assert "2 of 10 rows rejected (20.000%), above the allowed 0.100%" in result.stderr
    assert "<== " not in result.stdout.split("==> FerExampleGen")[-1]  # nothing ran after the failure
    # TFX removes a failed execution's outputs; the list is kept beside them and named.
    (rejects,) = glob.glob(f"{output}/pipeline_root/FerExampleGen/rejects/*-rejects.csv")
    assert f"All 2 rejected rows: {rejects}" in result.stderr
    assert "bad.csv,10,label," in result.stderr
    assert len(open(rejects).read().splitlines()) == 3  # header + both rejected rows
