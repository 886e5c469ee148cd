"""bench/distill_cost.py: both modes train the same faces, the second with the teacher."""

import importlib.util
import json
import os

import numpy as np

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("distill_cost", os.path.join(REPO, "bench", "distill_cost.py"))
distill_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(distill_cost)


def test_one_round_times_each_mode_after_its_first_epoch(tmp_path, capsys):
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / "data")
    for split, count in (("train", 128), ("valid", 64)):  # the recipe ablation's data cache
        np.savez(tmp_path / "data" / f"{split}.npz", x=rng.random((count, 48, 48, 1), dtype=np.float32),
                 y=rng.integers(0, 7, count))
    assert distill_cost.main(["--out", str(tmp_path), "--teacher", "shipped", "--images", "128", "--epochs", "2",
                              "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("[Trainer] distilling from a teacher of 1 model(s)") == 1  # the second mode only
    result = json.loads(out[out.index("{"):])
    assert result["images"] == 128 and result["teacher"][0].startswith(os.path.join(REPO, "models", "pretrained"))
    assert [len(v) for v in result["images_per_s"].values()] == [1, 1]  # epoch 2 of each mode
    assert result["epoch_time_ratio_with_teacher"] > 0


def test_arguments_it_cannot_run_with_are_one_line_errors(tmp_path, capsys):
    import pytest

    for args, words in ((["--epochs", "1"], "argument --epochs: 1 is outside [2, inf)"),
                        (["--rounds", "0"], "argument --rounds"),
                        ([], f"--run is needed: no data cache under {tmp_path / 'data'}")):
        with pytest.raises(SystemExit) as stopped:
            distill_cost.main(["--out", str(tmp_path), "--teacher", "shipped", *args])
        assert stopped.value.code == 2 and words in capsys.readouterr().err
