"""The compiled Kubeflow v2 pipeline: a valid PipelineSpec with every stage, its edges,
the pipeline image, the runtime parameters and the Beam arguments."""

import importlib
import importlib.util
import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubeflow import config, runner
from pipeline.options import PipelineOptions
from schema import SCHEMA_FILE

RESOLVERS = {"latest_blessed_model_resolver-model-resolver", "latest_blessed_model_resolver-model-blessing-resolver"}
UPSTREAM = {
    "FerExampleGen": set(),
    "ImportSchemaGen": set(),
    "StatisticsGen": {"FerExampleGen", "ImportSchemaGen"},
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "ClassBalanceCheck": {"StatisticsGen"},
    "Transform": {"FerExampleGen", "ImportSchemaGen"},
    "FerTrainer": {"Transform", "ImportSchemaGen", "ClassBalanceCheck"},
    "Evaluator": {"FerExampleGen", "FerTrainer", "latest_blessed_model_resolver-model-resolver"},
    "TestEvaluator": {"FerExampleGen", "FerTrainer"},
    "InfraValidator": {"FerExampleGen", "FerTrainer"},
    "Pusher": {"FerTrainer", "Evaluator", "InfraValidator"},
}
BEAM_POWERED = ("StatisticsGen", "Transform", "Evaluator", "TestEvaluator", "ExampleValidator")
TFX_ENTRYPOINT = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def containers(job):
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    return {name[: -len("_executor")]: e["container"] for name, e in executors.items() if "container" in e}


def test_parses_as_kfp_pipeline_spec_and_job(compiled):
    _, job = compiled
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    assert spec.schema_version == "2.1.0" and spec.pipeline_info.name == "fer"


def test_every_stage_with_its_upstream_edges(compiled):
    tasks = compiled[1]["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks) == set(UPSTREAM) | RESOLVERS
    for name, upstream in UPSTREAM.items():
        assert set(tasks[name].get("dependentTasks", [])) == upstream, name
    # The model resolver reads the blessing resolver's result: the baseline is the latest blessed model.
    resolver_input = tasks["latest_blessed_model_resolver-model-resolver"]["inputs"]["artifacts"]["input"]
    assert resolver_input["taskOutputArtifact"]["producerTask"] == "latest_blessed_model_resolver-model-blessing-resolver"
    trainer_inputs = tasks["FerTrainer"]["inputs"]["artifacts"]
    assert trainer_inputs["examples"]["taskOutputArtifact"] == {"producerTask": "Transform",
                                                                "outputArtifactKey": "transformed_examples"}
    assert trainer_inputs["class_balance"]["taskOutputArtifact"]["producerTask"] == "ClassBalanceCheck"
    pusher_inputs = tasks["Pusher"]["inputs"]["artifacts"]
    assert pusher_inputs["infra_blessing"]["taskOutputArtifact"]["producerTask"] == "InfraValidator"


def test_every_task_runs_the_tfx_entrypoint_in_the_pipeline_image_and_finds_its_code(compiled):
    found = containers(compiled[1])
    assert set(found) == set(UPSTREAM)
    assert importlib.util.find_spec(TFX_ENTRYPOINT[2]) is not None
    for name, container in found.items():
        assert container["image"] == config.DEFAULT_IMAGE
        assert container["command"] == TFX_ENTRYPOINT
        executor_path = container["args"][container["args"].index("--executor_class_path") + 1]
        module, _, cls = executor_path.rpartition(".")
        assert hasattr(importlib.import_module(module), cls), executor_path
    # FileBasedExampleGen's driver runs before the executor, in the same image.
    driver = found["FerExampleGen"]["lifecycle"]["preCacheCheck"]
    assert importlib.util.find_spec(driver["command"][2]) is not None


def test_module_paths_and_schema_point_inside_the_image(compiled):
    tasks = compiled[1]["pipelineSpec"]["root"]["dag"]["tasks"]
    constant = lambda task, name: tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]  # noqa: E731
    assert constant("ImportSchemaGen", "schema_file") == config.IMAGE_SCHEMA_FILE
    assert config.IMAGE_SCHEMA_FILE.endswith(SCHEMA_FILE[SCHEMA_FILE.rindex("/schema/"):])
    assert constant("Transform", "preprocessing_fn") == "models.preprocessing.preprocessing_fn"
    assert constant("FerTrainer", "run_fn") == "models.trainer.run_fn"
    push = json.loads(constant("Pusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == "gs://fer-pipeline/serving_model/fer"


def test_runtime_parameters_with_defaults_bound_to_the_components(compiled):
    _, job = compiled
    root = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert {n: p["parameterType"] for n, p in root.items()} == {
        "data_root": "STRING", "epochs": "NUMBER_INTEGER", "batch_size": "NUMBER_INTEGER",
        "learning_rate": "NUMBER_DOUBLE"}
    assert {n: p["defaultValue"] for n, p in root.items()} == {
        "data_root": config.DEFAULT_DATA_ROOT, "epochs": 100, "batch_size": 128, "learning_rate": 1e-4}
    assert job["runtimeConfig"]["parameterValues"]["data_root"] == config.DEFAULT_DATA_ROOT
    assert job["runtimeConfig"]["gcsOutputDirectory"] == config.DEFAULT_PIPELINE_ROOT
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks["FerExampleGen"]["inputs"]["parameters"]["input_base"] == {"componentInputParameter": "data_root"}
    for name in ("epochs", "batch_size", "learning_rate"):
        assert tasks["FerTrainer"]["inputs"]["parameters"][name] == {"componentInputParameter": name}


def test_default_beam_args_reach_every_beam_powered_component(compiled):
    # The image is named as the DirectRunner workers' container: TFX then packages no copy of itself.
    expected = [*config.DEFAULT_BEAM_ARGS, f"--sdk_container_image={config.DEFAULT_IMAGE}"]
    found = containers(compiled[1])
    for name in BEAM_POWERED:
        assert found[name]["args"][-len(expected):] == expected, name


def test_options(tmp_path):
    dataflow = ["--runner=DataflowRunner", "--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp"]
    job = runner.compile_pipeline(str(tmp_path / "p.json"), runner.CompileOptions(
        image="europe-docker.pkg.dev/p/fer/fer-pipeline:1", pipeline_root="gs://b/root", data_root="gs://b/data",
        pipeline=PipelineOptions(beam_args=tuple(dataflow)).replace(epochs=3), enable_infra_validation=False))
    found = containers(job)
    assert "InfraValidator" not in found
    assert "InfraValidator" not in job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"].get("dependentTasks", [])
    assert {c["image"] for c in found.values()} == {"europe-docker.pkg.dev/p/fer/fer-pipeline:1"}
    for name in BEAM_POWERED:
        assert found[name]["args"][-len(dataflow):] == dataflow
        assert "--direct_running_mode=multi_processing" not in found[name]["args"]
    assert job["runtimeConfig"]["parameterValues"]["epochs"] == 3
    push = job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["push_destination"]
    assert "gs://b/serving_model/fer" in push["runtimeValue"]["constant"]
    # A re-compile replaces the file (TFX itself refuses to overwrite).
    runner.compile_pipeline(str(tmp_path / "p.json"))
    assert json.loads((tmp_path / "p.json").read_text())["runtimeConfig"]["gcsOutputDirectory"] == config.DEFAULT_PIPELINE_ROOT


def test_cli_compile_with_defaults_only(tmp_path, capsys):
    from cli.main import main

    output = tmp_path / "out" / "pipeline.json"
    assert main(["kubeflow", "compile", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {output}: 13 tasks, image {config.DEFAULT_IMAGE}" in printed
    assert "runtime parameters: batch_size=128, data_root=gs://fer-pipeline/data, epochs=100" in printed
    json_format.ParseDict(json.loads(output.read_text())["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert main(["kubeflow", "compile", "--output", str(output), "--epochs", "7", "--no-infra-validation",
                 "--beam-arg=--runner=DirectRunner"]) == 0
    job = json.loads(output.read_text())
    assert job["runtimeConfig"]["parameterValues"]["epochs"] == 7
    assert "InfraValidator" not in job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert containers(job)["Transform"]["args"][-2:] == ["--runner=DirectRunner",
                                                         f"--sdk_container_image={config.DEFAULT_IMAGE}"]


def test_stronger_model_with_the_tuner_compiles_with_its_recipe_as_defaults(tmp_path):
    job = runner.compile_pipeline(str(tmp_path / "p.json"), runner.CompileOptions(
        pipeline=PipelineOptions(tune=True, tuning_trials=3).replace(model="vgg_bn"), enable_infra_validation=False))
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert "Tuner" in tasks and "Tuner" in tasks["FerTrainer"]["dependentTasks"]
    # vgg_bn's own learning rate, not the paper's, is the runtime parameter's default
    assert job["runtimeConfig"]["parameterValues"]["learning_rate"] == 1e-3
    tuner_config = json.loads(tasks["Tuner"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert tuner_config["max_trials"] == 3 and tuner_config["train_config"]["model"] == "vgg_bn"


def test_the_yaml_loads_with_the_kfp_sdk_s_own_loaders(compiled_yaml):
    """What create_run_from_pipeline_package and upload_pipeline (and so the kfp CLI) call on a
    package file, and kfp's component loader, which parses the PipelineSpec strictly."""
    from kfp import components
    from kfp.client import client as kfp_client

    path, job = compiled_yaml
    doc = kfp_client._extract_pipeline_yaml(path)
    assert doc.pipeline_spec.pipeline_info.name == "fer"
    assert set(doc.pipeline_spec.root.dag.tasks) == set(job["pipelineSpec"]["root"]["dag"]["tasks"])
    assert doc.pipeline_spec.default_pipeline_root == job["runtimeConfig"]["gcsOutputDirectory"]
    parameters = doc.pipeline_spec.root.input_definitions.parameters
    assert parameters["epochs"].default_value.number_value == 100 and parameters["epochs"].is_optional
    component = components.load_component_from_file(path)
    assert component.name == "fer" and "epochs" in component.component_spec.inputs


def test_the_output_name_chooses_the_format_and_anything_else_is_refused(tmp_path, capsys):
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["kubeflow", "compile", "--output", str(tmp_path / "p.txt")])
    assert exited.value.code == 2
    assert "end the name in .yaml (Kubeflow Pipelines) or .json (Vertex AI)" in capsys.readouterr().err


def test_compiling_with_the_default_image_and_root_warns_once_each(tmp_path, capsys):
    from cli.main import main

    assert main(["kubeflow", "compile", "--output", str(tmp_path / "p.yaml")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(err) == 2
    assert err[0].startswith(f"warning: no --image: tasks run in {config.DEFAULT_IMAGE}")
    assert err[1].startswith(f"warning: no --pipeline-root: artifacts go to {config.DEFAULT_PIPELINE_ROOT}")
    assert main(["kubeflow", "compile", "--output", str(tmp_path / "q.yaml"), "--image", "r/i:1",
                 "--pipeline-root", "gs://mine/root"]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_image_folders_compile_with_fer_image_gen_reading_the_data_root(tmp_path):
    from cli.main import main

    rc = main(["kubeflow", "compile", "--output", str(tmp_path / "p.json"), "--input-format", "images",
               "--crop-faces", "--detector", "blazeface", "--data-root", "gs://b/faces", "--no-infra-validation",
               "--image", "i:1", "--pipeline-root", "gs://b/root"])
    assert rc == 0
    job = json.loads((tmp_path / "p.json").read_text())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert "FerImageGen" in tasks and "FerExampleGen" not in tasks
    assert "FerImageGen" in tasks["Transform"]["dependentTasks"]
    parameters = tasks["FerImageGen"]["inputs"]["parameters"]
    assert parameters["input_base"]["componentInputParameter"] == config.DATA_ROOT_PARAMETER
    assert parameters["crop_faces"]["runtimeValue"]["constant"] == 1
    assert parameters["face_detector"]["runtimeValue"]["constant"] == "blazeface"
    assert job["runtimeConfig"]["parameterValues"][config.DATA_ROOT_PARAMETER] == "gs://b/faces"


def test_a_warm_start_compiles_to_a_warm_start_task_whose_source_is_a_runtime_parameter(tmp_path, capsys):
    """--warm-start on Kubeflow: the Trainer's base_model and the Evaluator's baseline come from
    WarmStart, which resolves the warm_start runtime parameter in the cluster (default: the value
    compiled in): a Model artifact's URI, a SavedModel, a pushed model's base path or `shipped`."""
    from cli.main import main

    uri = "gs://b/root/fer/FerTrainer/model/7"
    assert main(["kubeflow", "compile", "--output", str(tmp_path / "p.json"), "--warm-start", uri,
                 "--no-infra-validation", "--image", "i:1", "--pipeline-root", "gs://b/root"]) == 0
    assert f"warm_start={uri}" in capsys.readouterr().out
    job = json.loads((tmp_path / "p.json").read_text())
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert not RESOLVERS & set(tasks)  # the baseline is the warm start, not the latest blessed model
    assert tasks["warm_start"]["inputs"]["parameters"]["source"] == {
        "componentInputParameter": config.WARM_START_PARAMETER}
    executor = spec["deploymentSpec"]["executors"]["warm_start_executor"]["container"]
    assert executor["command"] == TFX_ENTRYPOINT and executor["image"] == "i:1"
    assert "components.warm_start.component.WarmStart_Executor" in executor["args"]
    output = spec["components"]["warm_start"]["outputDefinitions"]["artifacts"]["model"]
    assert output["artifactType"]["instanceSchema"].startswith("title: tfx.Model")
    produced_by_warm_start = {"taskOutputArtifact": {"producerTask": "warm_start", "outputArtifactKey": "model"}}
    assert tasks["FerTrainer"]["inputs"]["artifacts"]["base_model"] == produced_by_warm_start
    assert tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"] == produced_by_warm_start
    assert "warm_start" in tasks["FerTrainer"]["dependentTasks"]
    parameter = spec["root"]["inputDefinitions"]["parameters"][config.WARM_START_PARAMETER]
    assert (parameter["parameterType"], parameter["defaultValue"], parameter["isOptional"]) == ("STRING", uri, True)
    assert job["runtimeConfig"]["parameterValues"][config.WARM_START_PARAMETER] == uri
    # Without --warm-start there is no such parameter.
    assert config.WARM_START_PARAMETER not in runner.runtime_parameter_defaults(runner.CompileOptions())


def test_a_warm_start_of_shipped_compiles_and_loads_with_kfp(tmp_path, capsys):
    """`shipped` is the model packaged in the image: WarmStart resolves it in the cluster, so it
    compiles as the parameter's default, and the YAML loads with kfp's own loaders."""
    from kfp import components
    from kfp.client import client as kfp_client

    from cli.main import main

    path = str(tmp_path / "p.yaml")
    assert main(["kubeflow", "compile", "--output", path, "--warm-start", "shipped", "--image", "i:1",
                 "--pipeline-root", "gs://b/root"]) == 0
    assert "warm_start=shipped" in capsys.readouterr().out
    root = kfp_client._extract_pipeline_yaml(path).pipeline_spec.root
    parameter = root.input_definitions.parameters[config.WARM_START_PARAMETER]
    assert parameter.default_value.string_value == "shipped" and parameter.is_optional
    source = root.dag.tasks["warm_start"].inputs.parameters["source"]
    assert source.component_input_parameter == config.WARM_START_PARAMETER
    assert "base_model" in root.dag.tasks["FerTrainer"].inputs.artifacts
    assert config.WARM_START_PARAMETER in components.load_component_from_file(path).component_spec.inputs


def test_a_teacher_compiles_to_a_teacher_task_whose_sources_are_a_runtime_parameter(tmp_path, capsys):
    """--teacher on Kubeflow: the Trainer's `teacher` input comes from Teacher, which resolves the
    teacher runtime parameter (default: the list compiled in) in the cluster; the YAML loads with
    kfp's own loaders."""
    from kfp import components
    from kfp.client import client as kfp_client

    from cli.main import main

    sources = "shipped,gs://b/root/fer/FerTrainer/model/7"
    path = str(tmp_path / "p.yaml")
    assert main(["kubeflow", "compile", "--output", path, "--teacher", sources, "--distill-alpha", "0.7",
                 "--no-infra-validation", "--image", "i:1", "--pipeline-root", "gs://b/root"]) == 0
    assert f"teacher={sources}" in capsys.readouterr().out
    root = kfp_client._extract_pipeline_yaml(path).pipeline_spec.root
    parameter = root.input_definitions.parameters[config.TEACHER_PARAMETER]
    assert parameter.default_value.string_value == sources and parameter.is_optional
    assert root.dag.tasks["teacher"].inputs.parameters["sources"].component_input_parameter == config.TEACHER_PARAMETER
    produced = root.dag.tasks["FerTrainer"].inputs.artifacts["teacher"].task_output_artifact
    assert (produced.producer_task, produced.output_artifact_key) == ("teacher", "model")
    assert RESOLVERS & set(root.dag.tasks)  # the baseline is still the latest blessed model
    custom_config = root.dag.tasks["FerTrainer"].inputs.parameters["custom_config"].runtime_value.constant
    assert json.loads(custom_config.string_value)["distill_alpha"] == 0.7
    assert config.TEACHER_PARAMETER in components.load_component_from_file(path).component_spec.inputs
    assert config.TEACHER_PARAMETER not in runner.runtime_parameter_defaults(runner.CompileOptions())
