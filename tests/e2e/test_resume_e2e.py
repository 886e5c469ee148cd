"""A pipeline run killed with SIGKILL, then continued with --resume, ends as an unbroken run
would: killed once mid-epoch in the Trainer and once inside the Evaluator, each time the
data stages come from the cache, the Trainer goes on from its last complete epoch (and,
once it has finished, comes from the cache as well), and the last piece blesses and pushes
a model that serves."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

ARGS = ("--model", "simple_cnn", "--epochs", "12", "--patience", "12", "--learning-rate", "0.001",
        "--batch-size", "32", "--accuracy-threshold", "0.0")
DATA_STAGES = ("FerExampleGen", "StatisticsGen", "Transform")


def _run_until(csv, output, pattern, *extra):
    """Runs `fer-pipeline run`; SIGKILLs it as soon as a console line matches `pattern`.
    Returns the console up to the kill."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--data", csv, "--output", output, *ARGS, *extra]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    timer = threading.Timer(900, process.kill)  # bounded, whatever happens
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if re.search(pattern, line):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait()
        timer.cancel()
    console = "".join(lines)
    assert process.returncode == -signal.SIGKILL, f"the run was not killed at {pattern!r}:\n{console[-3000:]}"
    return console


def _finished(console):
    return dict(re.findall(r"^<== (\S+) \[([^\]]+)\]", console, re.M))


def test_a_run_killed_in_the_trainer_and_in_the_evaluator_resumes_to_a_pushed_model(trainable_csv, tmp_path):
    from tests.conftest import run_cli

    output = str(tmp_path / "run")
    # 1. Killed mid-training: after epoch 3's line, while epoch 4 runs.
    first = _run_until(trainable_csv, output, r"^\[Trainer\] epoch 3/12")
    state_path = os.path.join(output, "checkpoints", "simple_cnn", "state.json")
    killed_at = json.load(open(state_path))["epoch"]
    assert 3 <= killed_at < 12 and "<== FerTrainer" not in first

    # 2. Resumed, then killed inside the Evaluator (TFMA takes seconds on this data).
    second = _run_until(trainable_csv, output, r"^==> Evaluator ", "--resume")
    assert all(_finished(second)[stage] == "cached" for stage in DATA_STAGES), _finished(second)
    assert f"[Trainer] resuming simple_cnn from epoch {killed_at} " in second
    trained = re.search(r"<== FerTrainer .*: 12 epoch\(s\).*resumed from epoch (\d+), .* in 2 pieces", second)
    assert trained and int(trained.group(1)) == killed_at, second[-3000:]
    assert "<== Evaluator" not in second and "<== Pusher" not in second

    # 3. Resumed again: the Trainer finished in piece 2 (same inputs and settings), so it comes
    # from the cache too; its model is evaluated, blessed and pushed.
    third, finished = run_cli(trainable_csv, output, *ARGS[:-2], "--accuracy-threshold", "0.0", "--resume")
    assert all(finished[stage] == "cached" for stage in (*DATA_STAGES, "FerTrainer")), finished
    assert re.search(r"<== Evaluator .* -> BLESSED", third) and "Model blessed and pushed" in third
    history = json.load(open(state_path))["history"]
    assert [h["epoch"] for h in history] == list(range(1, 13))

    import numpy as np
    import tensorflow as tf

    [pushed] = glob.glob(os.path.join(output, "serving_model", "fer", "*"))
    images = np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1)).astype(np.uint8)
    probabilities = next(iter(tf.saved_model.load(pushed).signatures["serving_default"](
        image=tf.constant(images)).values())).numpy()
    assert probabilities.shape == (8, 7)
    # The Trainer's int8 TFLite twin travels with the SavedModel and computes the same.
    from client.analyze import TflitePredictor

    twin = TflitePredictor(pushed).predict(images[..., 0])
    # (int8: probabilities in steps of 1/256, a few hundredths apart on noise faces)
    assert twin.shape == (8, 7) and np.abs(twin - probabilities).max() < 0.2
    assert (twin.argmax(1) == probabilities.argmax(1)).mean() >= 0.75
