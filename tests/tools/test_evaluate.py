"""fer-pipeline evaluate: the metrics (against scikit-learn), and the command on the e2e
run's pushed model, whose accuracy must equal the Evaluator's (TFMA) on the same rows."""

import glob
import json
import os

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from cli.main import main
from tools import evaluate


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 400)
    labels[labels == 1] = 0  # no true "disgust": its recall is undefined
    logits = rng.normal(size=(400, 7)) + 2.0 * np.eye(7)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = evaluate.evaluation_metrics(labels, probabilities)
    predicted = probabilities.argmax(axis=1)
    assert result["accuracy"] == pytest.approx((predicted == labels).mean())
    second = np.argsort(probabilities, axis=1)[:, -2]
    assert result["top2_accuracy"] == pytest.approx(((predicted == labels) | (second == labels)).mean())
    assert result["confusion_matrix"] == confusion_matrix(labels, predicted, labels=range(7)).tolist()
    recalls = recall_score(labels, predicted, labels=range(7), average=None, zero_division=0)
    precisions = precision_score(labels, predicted, labels=range(7), average=None, zero_division=0)
    for class_id, name in enumerate(result["class_names"]):
        row = result["per_class"][name]
        if row["support"]:
            assert row["recall"] == pytest.approx(recalls[class_id])
        else:
            assert row["recall"] is None
        if row["precision"] is not None:
            assert row["precision"] == pytest.approx(precisions[class_id])


def test_unknown_usage_is_a_clear_error(demo_csv):
    with pytest.raises(ValueError, match="Training, PublicTest, PrivateTest"):
        evaluate.read_usage(demo_csv, "Validation")


@pytest.mark.e2e
def test_evaluate_the_pushed_model_agrees_with_the_evaluator(runs, trainable_csv, capsys):
    from dashboard import data

    (version,) = glob.glob(os.path.join(runs[0], "serving_model", "fer", "*"))
    assert main(["evaluate", "--model", version, "--data", trainable_csv, "--usage", "PublicTest", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["examples"] == 100 and result["rows_rejected"] == 0
    assert set(result) >= {"accuracy", "top2_accuracy", "per_class", "confusion_matrix"}
    # The Evaluator judged the same model on the same PublicTest rows through `classify`.
    tfma_accuracy = data.load_report(runs[0]).slice().get(data.ACCURACY)
    assert result["accuracy"] == pytest.approx(tfma_accuracy, abs=1e-6)
    with pytest.raises(SystemExit) as exited:  # the parser refuses a missing file, exit code 2
        main(["evaluate", "--model", version, "--data", trainable_csv + ".missing"])
    assert exited.value.code == 2
