"""The whole pipeline on a generated folder of images with every kind of bad file, through the
CLI a user runs: FerImageGen in place of FerExampleGen, every later stage unchanged, the bad
files quarantined and counted, a re-run with the tree unchanged taken from the cache, and a
changed image ingested again."""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli
from tests.components.test_fer_image_gen_folders import make_bad_tree

pytestmark = pytest.mark.e2e

STAGES = [
    "FerImageGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ClassBalanceCheck",
    "Transform", "FerTrainer", "latest_blessed_model_resolver", "Evaluator", "TestEvaluator", "Pusher",
]


def test_a_folder_of_images_runs_the_whole_pipeline(tmp_path):
    from tools import demo_data

    tree = tmp_path / "faces"
    bad = make_bad_tree(tree)  # 40 generated faces and one file of every bad kind
    demo_data.write_demo_tree(str(tmp_path / "more"), 300, seed=9)
    for path in (tmp_path / "more").rglob("*.png"):  # 300 more faces beside them, other names
        target = tree / path.relative_to(tmp_path / "more")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target.with_name("m" + path.name))
    output = str(tmp_path / "run")
    stdout, finished = run_cli(str(tree), output, "--model", "simple_cnn", "--max-reject-fraction", "0.1",
                               "--accuracy-threshold", "0")
    assert set(finished) == set(STAGES) and all(t != "cached" for t in finished.values())
    rows = 340 + len(bad)
    assert re.search(rf"<== FerImageGen .* {rows} rows: 340 written \(train \d+, valid \d+, eval \d+, test \d+\), "
                     rf"{len(bad)} rejected \[.*symlink_loop 3.*\] -> .*rejects\.csv", stdout), stdout
    assert f"({rows} image files)" in stdout
    root = os.path.join(output, "pipeline_root")
    for split in ("train", "valid", "eval", "test"):
        assert glob.glob(f"{root}/FerImageGen/examples/*/Split-{split}/*.gz")
    # Downstream as for a CSV: one epoch, so the blessing may go either way.
    # a folder's eval split is the user's own, not FER-2013's PublicTest
    assert re.search(r"<== Evaluator .* eval: accuracy 0\.\d+", stdout) and "PublicTest" not in stdout

    again, finished = run_cli(str(tree), output, "--model", "simple_cnn", "--max-reject-fraction", "0.1",
                              "--accuracy-threshold", "0")
    assert finished["FerImageGen"] == "cached" and finished["Transform"] == "cached"

    changed = sorted((tree / "train" / "sad").glob("*.png"))[0]
    changed.write_bytes(changed.read_bytes())  # the same bytes, a new mtime
    os.utime(changed, (1, 1))
    third, finished = run_cli(str(tree), output, "--model", "simple_cnn", "--max-reject-fraction", "0.1",
                              "--accuracy-threshold", "0")
    assert finished["FerImageGen"] != "cached"


def test_a_folder_that_is_no_data_set_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "faces" / "train" / "bored").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "cli.main", "run", "--data", str(tmp_path / "faces"),
                             "--output", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bored" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out")
