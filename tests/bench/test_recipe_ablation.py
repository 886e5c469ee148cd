"""bench/recipe_ablation.py --valid-metrics: a cell's best weights scored on the valid carve."""

import importlib.util
import json
import os

import numpy as np

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("recipe_ablation", os.path.join(REPO, "bench", "recipe_ablation.py"))
recipe_ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe_ablation)


def test_valid_metrics_score_each_cell_s_best_weights_and_skip_cells_not_started(tmp_path, capsys):
    from models import registry, trainer

    rng = np.random.default_rng(0)
    x = rng.random((40, 48, 48, 1), dtype=np.float32)
    y = rng.integers(0, 7, 40)
    os.makedirs(tmp_path / "data")
    np.savez(tmp_path / "data" / "valid.npz", x=x, y=y)  # the data cache a run of cells leaves
    model = registry.build("compact_resnet")
    stopper = trainer.ResumableEarlyStopping(str(tmp_path / "base" / "checkpoints"), patience=1)
    stopper.set_model(model)
    stopper.on_epoch_begin(0)
    stopper.on_epoch_end(0, {"val_accuracy": 0.5})  # writes best-0001.weights.h5 and state.json

    assert recipe_ablation.main(["--out", str(tmp_path), "--results", "-", "--valid-metrics",
                                 "--cells", "base,base_mixup"]) == 0
    [line] = capsys.readouterr().out.splitlines()  # base_mixup has no checkpoint: skipped
    record = json.loads(line)
    predicted = model.predict(x, verbose=0)
    assert record["cell"] == "base" and record["valid_images"] == 40
    assert record["accuracy"] == round(float((predicted.argmax(1) == y).mean()), 4)
    top2 = np.argsort(-predicted, axis=1)[:, :2]
    assert record["top2_accuracy"] == round(float((top2 == y[:, None]).any(axis=1).mean()), 4)
    assert 0 <= record["macro_f1"] <= 1 and record["weights"] == os.path.join("base", "checkpoints", "best-0001.weights.h5")
