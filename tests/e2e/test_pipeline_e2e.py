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

from core import features

pytestmark = pytest.mark.e2e

STAGES = [
    "FerExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ClassBalanceCheck",
    "Transform", "FerTrainer", "latest_blessed_model_resolver", "Evaluator", "TestEvaluator", "Pusher",
]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_stage_executed_and_reported(runs):
    output, (stdout, finished), _, _ = runs
    assert set(finished) == set(STAGES)
    assert all(tag != "cached" for tag in finished.values())
    for stage in STAGES:
        assert f"==> {stage} ..." in stdout
    assert re.search(r"<== FerExampleGen .* 1000 rows: 1000 written \(train 7\d\d, valid \d\d, eval 100, test 100\), "
                     r"0 rejected", stdout)
    assert re.search(r"<== ClassBalanceCheck .* under-represented: .*disgust", stdout)
    assert re.search(r"<== ExampleValidator .* anomalies: none", stdout)
    assert re.search(r"<== FerTrainer .* simple_cnn: 10 epoch\(s\), best val accuracy 0\.\d+", stdout)
    assert re.search(r"<== Evaluator .* PublicTest \(eval\): accuracy 0\.\d+, top-2 0\.\d+, macro-F1 0\.\d+ -> BLESSED",
                     stdout)
    assert re.search(r"<== TestEvaluator .* PrivateTest \(test\): accuracy 0\.\d+, .* \(reported only\)", stdout)
    assert "Model blessed and pushed:" in stdout
    assert os.path.exists(os.path.join(output, "metadata.sqlite"))


def test_stage_outputs_exist(runs):
    root = os.path.join(runs[0], "pipeline_root")
    for split in ("train", "valid", "eval", "test"):
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
    reused = set(STAGES) - {"latest_blessed_model_resolver", "Evaluator", "Pusher"}  # TestEvaluator: cached
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


def _executions(output):
    """node id -> the latest execution's properties, from the run's MLMD store."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = os.path.join(output, "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    latest = {}
    for context in store.get_contexts_by_type("node"):
        executions = store.get_executions_by_context(context.id)
        if executions:
            execution = max(executions, key=lambda e: e.id)
            node = context.name.split(".", 1)[1]
            latest[node] = {k: getattr(v, v.WhichOneof("value")) for k, v in execution.custom_properties.items()}
    return store, latest


def test_no_split_both_selects_and_reports_the_model(runs):
    import json

    store, executions = _executions(runs[0])
    trainer = executions["FerTrainer"]
    selecting = set(json.loads(trainer["eval_args"])["splits"])
    training = set(json.loads(trainer["train_args"])["splits"])
    reporting = set()
    for node in ("Evaluator", "TestEvaluator"):
        reporting |= set(json.loads(executions[node]["example_splits"]))
    assert selecting == {"valid"} and training == {"train"} and reporting == {"eval", "test"}
    assert not selecting & reporting and not training & reporting
    # What the evaluations actually measured, as recorded on their artifacts.
    measured = sorted(a.custom_properties["example_splits"].string_value
                      for a in store.get_artifacts_by_type("ModelEvaluation"))
    assert set(measured) == {'["eval"]', '["test"]'}


def _copy_of_run(output, tmp_path):
    """A new run directory whose MLMD store is the first run's: data stages are cached and
    its blessed model is the latest-blessed baseline."""
    import shutil

    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(os.path.join(output, "metadata.sqlite"), copy / "metadata.sqlite")
    return str(copy)


def test_a_model_worse_than_the_latest_blessed_one_is_declined_and_not_pushed(runs, trainable_csv, tmp_path):
    from tests.conftest import run_cli

    output = _copy_of_run(runs[0], tmp_path)
    # 2 epochs instead of 10: a real model that beats the majority class and the bound but not the baseline
    stdout, finished = run_cli(trainable_csv, output, "--model", "simple_cnn", "--epochs", "2", "--patience", "10",
                               "--learning-rate", "0.001", "--accuracy-threshold", "0.0")
    assert finished["FerTrainer"] != "cached" and finished["Transform"] == "cached"
    failures = re.search(r"<== Evaluator .* -> NOT blessed: (.*)", stdout).group(1)
    assert "sparse_categorical_accuracy change vs baseline" in failures and "fell below the baseline" in failures
    assert "accuracy_over_majority" not in failures  # the regression rule alone declined it
    assert re.search(r"<== Pusher .* nothing pushed", stdout)
    assert not os.path.exists(os.path.join(output, "serving_model"))


def test_a_model_no_better_than_the_majority_class_is_never_blessed(demo_csv, tmp_path):
    from tests.conftest import run_cli

    # The paper's CNN after one epoch on 215 faces answers the most frequent class: with
    # no baseline and a zero accuracy bound, only the majority rule can decline it.
    stdout, _ = run_cli(demo_csv, str(tmp_path / "run"), "--accuracy-threshold", "0.0")
    assert re.search(r"<== latest_blessed_model_resolver .* baseline: none", stdout)
    failures = re.search(r"<== Evaluator .* -> NOT blessed: (.*)", stdout).group(1)
    assert failures.startswith("accuracy_over_majority=") and "no better than always answering" in failures
    assert "sparse_categorical_accuracy" not in failures
    assert "Model NOT blessed: nothing was pushed" in stdout
