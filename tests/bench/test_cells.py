"""bench/cells.py: cells run once each, their lines are kept, a finished cell is skipped and a
failed one stops the run (recipe_ablation.py and paper_gap.py use it)."""

import importlib.util
import json
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("cells", os.path.join(REPO, "bench", "cells.py"))
cells = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cells)


def _printing(epochs):
    return lambda name: ["-c", f"print('noise'); print('{{\"cell\": \"{name}\", \"epochs\": {epochs}}}')"]


def test_cells_run_once_and_a_failure_stops_the_run(tmp_path):
    results = str(tmp_path / "out" / "results.jsonl")
    assert cells.run_cells(["a", "b"], results, _printing(3)) == 0
    assert [json.loads(line) for line in open(results)] == [{"cell": "a", "epochs": 3}, {"cell": "b", "epochs": 3}]
    assert cells.run_cells(["a", "b"], results, lambda name: ["-c", "raise SystemExit(3)"]) == 0  # both skipped
    assert cells.run_cells(["c", "d"], results, lambda name: ["-c", "raise SystemExit(3)"]) == 1
    assert cells.finished(results) == {"a", "b"}
    # a line from another budget does not count as this budget's
    assert cells.run_cells(["a"], results, _printing(15), keep=lambda r: r["epochs"] == 15) == 0
    assert cells.finished(results, keep=lambda r: r["epochs"] == 15) == {"a"}


def test_chosen_names_are_checked_against_the_known_ones(capsys):
    import argparse

    import pytest

    parser = argparse.ArgumentParser(prog="bench")
    assert cells.chosen(parser, "b,a", ["a", "b", "c"]) == ["b", "a"]
    with pytest.raises(SystemExit) as raised:
        cells.chosen(parser, "a,z", ["a", "b"], "recipes")
    assert raised.value.code == 2
    assert "unknown recipes ['z']; choose from a, b" in capsys.readouterr().err
