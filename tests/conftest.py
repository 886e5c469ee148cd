import os
import re
import subprocess
import sys

import pytest

# Keep TF quiet and deterministic enough for tests on 2 cores.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REAL_FER_CSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013", "fer2013.csv.gz")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

@pytest.fixture(scope="session")
def demo_csv(tmp_path_factory):
    """A small generated FER CSV (300 rows: 240 Training, 30 PublicTest, 30 PrivateTest)."""
    from tools import demo_data

    path = tmp_path_factory.mktemp("data") / "demo.csv"
    demo_data.write_demo_file(str(path), rows=300, seed=7)
    return str(path)


@pytest.fixture(scope="session")
def trainable_csv(tmp_path_factory):
    """A generated FER CSV on which a small model learns (1,000 rows: 800 Training, 100
    PublicTest, 100 PrivateTest): the blessing needs a model that beats always answering the
    most frequent class, which 300 rows and one epoch do not give."""
    from tools import demo_data

    path = tmp_path_factory.mktemp("trainable") / "demo.csv"
    demo_data.write_demo_file(str(path), rows=1000, seed=7)
    return str(path)


# A model that learns the generated faces in seconds (simple_cnn reaches ~0.9 on them).
LEARNING_MODEL_ARGS = ("--model", "simple_cnn", "--epochs", "10", "--patience", "10", "--learning-rate", "0.001")


@pytest.fixture
def real_fer_csv():
    if not os.path.exists(REAL_FER_CSV):
        pytest.skip("the real FER-2013 file is not beside this checkout")
    return os.path.abspath(REAL_FER_CSV)


def run_cli(csv, output, *extra):
    """`fer-pipeline run` (1 epoch, batch 32) as a user runs it: (stdout, {stage: time|cached})."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--data", csv, "--output", output, "--epochs", "1",
           "--batch-size", "32", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    finished = dict(re.findall(r"^<== (\S+) \[([^\]]+)\]", result.stdout, re.M))
    return result.stdout, finished


@pytest.fixture(scope="session")
def runs(trainable_csv, tmp_path_factory):
    """Three pipeline runs in one output directory: (output, first, second, third).
    1: everything runs, blessed and pushed; 2: same inputs, cached up to the Trainer;
    3: blessing bound 1.01, so the Evaluator (baseline: run 1's model) declines."""
    output = str(tmp_path_factory.mktemp("run"))
    first = run_cli(trainable_csv, output, *LEARNING_MODEL_ARGS, "--accuracy-threshold", "0.0")
    second = run_cli(trainable_csv, output, *LEARNING_MODEL_ARGS, "--accuracy-threshold", "0.0")
    third = run_cli(trainable_csv, output, *LEARNING_MODEL_ARGS, "--accuracy-threshold", "1.01")
    return output, first, second, third
