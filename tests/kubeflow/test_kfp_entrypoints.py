"""The compiled pipeline executes: every container task run through TFX's KFP v2 entrypoints
(driver and executor commands exactly as compiled), fed ExecutorInputs the way the KFP v2
launcher builds them, with the runtime parameters data_root, epochs and batch_size set for
the run. Only the two latest-blessed-model resolver tasks do not run: they are MLMD queries
the KFP backend answers itself (with no blessed model yet, the Evaluator has no baseline)."""

import json
import os
import shutil

import pytest

from kubeflow import runner
from pipeline.options import PipelineOptions
from tests.kubeflow.local_launcher import LocalLauncher

pytestmark = pytest.mark.e2e

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORDER = ["FerExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ClassBalanceCheck", "Transform",
         "FerTrainer", "Evaluator", "TestEvaluator", "Pusher"]


@pytest.fixture(scope="module")
def launched(trainable_csv, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp-run")
    data_root = tmp / "data"
    data_root.mkdir()
    shutil.copy(trainable_csv, data_root / "fer.csv")
    job = runner.compile_pipeline(str(tmp / "pipeline.json"), runner.CompileOptions(
        pipeline_root=str(tmp / "root"), serving_model_dir=str(tmp / "serving" / "fer"),
        # a model that beats the majority class in seconds: the blessing requires it
        # in_memory: on a 2-core machine multi_processing only adds start-up time
        pipeline=PipelineOptions(beam_args=("--direct_running_mode=in_memory",), accuracy_lower_bound=0.0).replace(
            model="simple_cnn", patience=10),
        # InfraValidator starts TF Serving as a Kubernetes pod: not here
        enable_infra_validation=False))
    launcher = LocalLauncher(job, str(tmp / "tasks"), project_dir=REPO,
                             parameters={"data_root": str(data_root), "epochs": 10, "batch_size": 32,
                                         "learning_rate": 1e-3})
    with pytest.MonkeyPatch.context() as patch:  # the tasks' temporary files, as a pod's /tmp
        patch.setenv("TMPDIR", str(tmp / "task_tmp"))
        (tmp / "task_tmp").mkdir()
        for task in ORDER:
            launcher.run(task)
    return launcher, tmp


def test_no_task_built_a_tfx_package_for_its_beam_workers(launched):
    _, tmp = launched
    left = [os.path.join(d, name) for d, dirs, _ in os.walk(tmp / "task_tmp") for name in dirs]
    assert not [path for path in left if path.endswith(os.path.join("build", "tfx"))], left


def _uri(launcher, task, output):
    (artifact,) = launcher.outputs[task][output]
    return artifact["uri"], artifact.get("metadata", {})


def test_example_gen_read_the_data_root_parameter(launched):
    launcher, _ = launched
    uri, metadata = _uri(launcher, "FerExampleGen", "examples")
    assert json.loads(metadata["split_names"]) == ["train", "valid", "eval", "test"]
    for split in ("train", "valid", "eval", "test"):
        assert os.listdir(os.path.join(uri, f"Split-{split}"))
    rejects_uri, _ = _uri(launcher, "FerExampleGen", "rejects")
    summary = json.load(open(os.path.join(rejects_uri, "summary.json")))
    assert summary["rows"] == 1000 and summary["rejected"] == 0


def test_validation_and_class_balance_ran(launched):
    launcher, _ = launched
    assert os.path.exists(os.path.join(_uri(launcher, "ImportSchemaGen", "schema")[0], "schema.pbtxt"))
    uri, metadata = _uri(launcher, "ClassBalanceCheck", "class_balance")
    report = json.load(open(os.path.join(uri, "class_balance.json")))
    assert "disgust" in " ".join(report["findings"])
    assert launcher.outputs["ExampleValidator"]["anomalies"]


def test_trainer_took_the_runtime_parameters(launched):
    launcher, _ = launched
    summary = json.load(open(os.path.join(_uri(launcher, "FerTrainer", "model_run")[0], "training_summary.json")))
    assert summary["epochs_run"] == 10
    assert summary["config"]["epochs"] == 10 and summary["config"]["batch_size"] == 32
    assert summary["config"]["learning_rate"] == 1e-3 and summary["config"]["model"] == "simple_cnn"
    report = json.load(open(os.path.join(_uri(launcher, "ClassBalanceCheck", "class_balance")[0], "class_balance.json")))
    assert summary["config"]["class_weights"] == report["class_weights"]


def test_evaluated_blessed_and_pushed(launched):
    launcher, tmp = launched
    _, blessing = _uri(launcher, "Evaluator", "blessing")
    assert blessing["blessed"] == 1
    _, pushed = _uri(launcher, "Pusher", "pushed_model")
    assert pushed["pushed"] == 1
    assert pushed["pushed_destination"].startswith(str(tmp / "serving" / "fer"))
    assert os.path.exists(os.path.join(pushed["pushed_destination"], "saved_model.pb"))
