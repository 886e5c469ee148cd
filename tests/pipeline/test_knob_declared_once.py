"""A training knob is declared once, as a knob() field of TrainConfig: a knob added there and
nowhere else gets its flags, reaches run_fn's TrainConfig on a real local run, and reaches the
compiled Kubeflow spec (a runtime knob as a pipeline runtime parameter, the others inside the
Trainer's custom_config) and run_fn from there."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def added_knobs():
    """Two knobs as a newcomer writes them in models/train_config.py: one an orchestrator may
    set per run (a runtime parameter), one fixed when the pipeline is compiled."""
    return (
        '    probe_width: int = knob(3, "a runtime knob the test adds", runtime=True, parse=arg_types.positive_int)\n'
        '    probe_mode: str = knob("plain", "a knob the test adds", choices=("plain", "fancy"))\n'
    )


@pytest.fixture(scope="module")
def probed(added_knobs, demo_csv, tmp_path_factory):
    """What tests/pipeline/knob_probe.py saw with the knobs added (a real local run through the
    Trainer on 40 rows a split, and a Kubeflow compile)."""
    out = tmp_path_factory.mktemp("knob")
    request = out / "request.json"
    request.write_text(json.dumps({
        "knob_lines": added_knobs, "data": demo_csv, "output": str(out / "run"),
        "run_args": ["--probe-width", "5", "--probe-mode", "fancy", "--model", "simple_cnn", "--epochs", "1",
                     "--batch-size", "16", "--max-rows", "40"],
        "compile_args": ["--probe-width", "6", "--probe-mode", "fancy"]}))
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-m", "tests.pipeline.knob_probe", str(request)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=1200)
    lines = [line for line in result.stdout.splitlines() if line.startswith("KNOB_PROBE ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(lines[-1][len("KNOB_PROBE "):])


def test_the_added_knobs_have_flags_and_reach_run_fn_on_a_real_local_run(probed):
    local = probed["local"]
    assert (local["options"]["probe_width"], local["options"]["probe_mode"]) == (5, "fancy")
    (trained,) = local["run_fn"]  # the TrainConfig the real run_fn trained with
    assert (trained["probe_width"], trained["probe_mode"]) == (5, "fancy")
    assert (trained["model"], trained["epochs"], trained["batch_size"]) == ("simple_cnn", 1, 16)


def test_the_added_knobs_reach_the_compiled_kubeflow_spec_and_run_fn_from_it(probed):
    kubeflow = probed["kubeflow"]
    # The runtime knob: a pipeline runtime parameter of its declared type, defaulting to the flag's value.
    parameter = kubeflow["parameters"]["probe_width"]
    assert (parameter["parameterType"], parameter["defaultValue"]) == ("NUMBER_INTEGER", 6)
    assert kubeflow["trainer_inputs"]["probe_width"] == {"componentInputParameter": "probe_width"}
    # The other: fixed at compile time, in the Trainer's custom_config.
    assert "probe_mode" not in kubeflow["parameters"]
    custom_config = json.loads(kubeflow["trainer_inputs"]["custom_config"]["runtimeValue"]["constant"])
    assert custom_config["probe_mode"] == "fancy" and "probe_width" not in custom_config
    assert (kubeflow["run_fn"]["probe_width"], kubeflow["run_fn"]["probe_mode"]) == (6, "fancy")
