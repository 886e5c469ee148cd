"""bench/precision_bench.py: each model trains with its recipe's targets; an unknown model is one line."""

import importlib.util
import json
import os

import numpy as np
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("precision_bench", os.path.join(REPO, "bench", "precision_bench.py"))
precision_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(precision_bench)


def test_targets_are_one_hot_only_where_the_recipe_needs_them():
    from models import trainer

    labels = np.array([0, 6, 3])
    smoothed = precision_bench.targets(labels, trainer.TrainConfig.from_dict({"model": "compact_resnet_v2"}))
    assert smoothed.shape == (3, 7) and smoothed.argmax(axis=1).tolist() == [0, 6, 3]
    assert precision_bench.targets(labels, trainer.TrainConfig.from_dict({"model": "proposed_cnn"})) is labels


def test_an_unknown_model_is_refused_in_one_line():
    with pytest.raises(SystemExit) as stop:
        precision_bench.main(["--models", "compact_resnet_v2,nope"])
    assert "unknown model 'nope'" in str(stop.value) and "\n" not in str(stop.value)


def test_a_recipe_with_label_smoothing_is_timed_in_both_policies(capsys):
    # compact_resnet_v2's recipe smooths labels: its loss needs one-hot targets (a traceback before)
    precision_bench.main(["--models", "compact_resnet_v2", "--batch-sizes", "8", "--images", "48"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"model"')]
    assert [(line["policy"], line["batch_size"]) for line in lines] == [("float32", 8), ("mixed_bfloat16", 8)]
    assert all(line["images_per_s"] > 0 for line in lines)
