"""bench/time_to_accuracy.py: the first epoch at the target and the ratio (or bound) it reports."""

import importlib.util
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("time_to_accuracy", os.path.join(REPO, "bench", "time_to_accuracy.py"))
tta = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tta)


def _history(*accuracies, seconds=60.0):
    return [{"epoch": i + 1, "val_accuracy": a, "seconds": seconds} for i, a in enumerate(accuracies)]


def test_reached_is_the_first_epoch_at_the_target_with_the_time_summed_to_it():
    assert tta.reached(_history(0.5, 0.61, 0.59, 0.62), 0.606) == {"epoch": 2, "seconds": 120.0}
    assert tta.reached(_history(0.5, 0.6), 0.606) is None


def _record(cell, reached, train_seconds):
    return {"cell": cell, "time_to_target": reached, "train_seconds": train_seconds}


def test_ratio_or_bound():
    v2 = _record("v2", {"epoch": 12, "seconds": 720.0}, 720.0)
    assert tta.ratio_line([_record("v1", {"epoch": 19, "seconds": 1440.0}, 1440.0), v2]) == {"ratio_v2_over_v1": 0.5}
    # version 1 stopped at the cap without the target: its time is a lower bound, the ratio an upper one
    assert tta.ratio_line([_record("v1", None, 2400.0), v2]) == {"ratio_v2_over_v1_at_most": 0.3}
    assert tta.ratio_line([_record("v1", None, 2400.0), _record("v2", None, 900.0)])["ratio_v2_over_v1"] is None
    assert tta.ratio_line([v2]) is None


def test_lines_of_other_settings_are_left_out(tmp_path, capsys):
    import argparse
    import json

    args = argparse.Namespace(target=0.606, v2_epochs=15)
    keep = tta.same_settings(args)
    assert keep({"target_valid_accuracy": 0.606, "recipe": {"model": "compact_resnet"}})
    assert keep({"target_valid_accuracy": 0.606, "recipe": {"model": "compact_resnet_v2", "epochs": 15,
                                                             "mixup": tta.SHIPPED_MIXUP}})
    # a line without its mixup was version 2's recipe (mixup 0), not the catalogue's shipped one
    assert not keep({"target_valid_accuracy": 0.606, "recipe": {"model": "compact_resnet_v2", "epochs": 15}})
    assert not keep({"target_valid_accuracy": 0.606, "recipe": {"model": "compact_resnet_v2", "epochs": 30}})
    assert not keep({"target_valid_accuracy": 0.62, "recipe": {"model": "compact_resnet"}})
    results = tmp_path / "r.jsonl"
    lines = [dict(_record("v1", {"epoch": 19, "seconds": 1440.0}, 1440.0), target_valid_accuracy=0.606, recipe={}),
             dict(_record("v2", {"epoch": 12, "seconds": 720.0}, 720.0), target_valid_accuracy=0.606,
                  recipe={"epochs": 15}),
             dict(_record("v2", {"epoch": 9, "seconds": 10.0}, 10.0), target_valid_accuracy=0.606,
                  recipe={"epochs": 30})]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert tta.main(["--results", str(results), "--report"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ratio_v2_over_v1": 0.5}
