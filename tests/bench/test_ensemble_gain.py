"""bench/ensemble_gain.py: every combination is scored by the mean of its models' probabilities."""

import importlib.util
import os

import numpy as np
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("ensemble_gain", os.path.join(REPO, "bench", "ensemble_gain.py"))
ensemble_gain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ensemble_gain)


def test_combinations_are_each_model_then_every_group():
    assert ensemble_gain.combinations(["a", "b", "c"]) == [
        ("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]


def test_the_mean_of_two_models_can_beat_both():
    labels = np.array([0, 1, 2, 3])
    eye = np.eye(7)
    # a is right on 0 and 1 and unsure elsewhere; b is right on 2 and 3 and unsure elsewhere
    a = np.stack([eye[0], eye[1], 0.4 * eye[2] + 0.6 * eye[5], 0.4 * eye[3] + 0.6 * eye[5]])
    b = np.stack([0.4 * eye[0] + 0.6 * eye[6], 0.4 * eye[1] + 0.6 * eye[6], eye[2], eye[3]])
    scores = ensemble_gain.scores(labels, {"a": a, "b": b}, ["a", "b"])
    assert scores["a"]["accuracy"] == scores["b"]["accuracy"] == 0.5
    assert scores["a+b"]["accuracy"] == 1.0


def test_bad_arguments_are_one_line(tmp_path, capsys):
    for argv in (["--data", "x", "--model", "a=" + str(tmp_path)],
                 ["--data", "x", "--model", "a=" + str(tmp_path), "--model", "b=" + str(tmp_path)]):
        with pytest.raises(SystemExit) as raised:
            ensemble_gain.main(argv)
        assert raised.value.code == 2
    assert "no saved_model.pb in" in capsys.readouterr().err
