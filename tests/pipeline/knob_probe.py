"""Run as `python -m tests.pipeline.knob_probe REQUEST.json`: adds knob() fields to TrainConfig
(models/train_config.py, the one declaration of a training knob), then follows them as a user
would, printing one JSON line of what arrived where:

* `fer-pipeline run` flags parsed into PipelineOptions;
* a real local run (LocalDagRunner, the real run_fn) up to and including the Trainer, on the
  CSV given: the TrainConfig run_fn trained with;
* `fer-pipeline kubeflow compile`: the compiled spec's root parameters and the Trainer's inputs,
  and the TrainConfig run_fn gets from them (the FerTrainer executor's merge, as on a cluster).

A subprocess, because the declaration is read when the modules import: the edited TrainConfig
replaces models.train_config before anything else imports it.
"""

import dataclasses
import glob
import importlib.util
import json
import os
import sys


def install_declaration(knob_lines: str) -> None:
    """models.train_config with `knob_lines` added at the top of TrainConfig's body."""
    spec = importlib.util.find_spec("models.train_config")
    with open(spec.origin) as f:
        source = f.read()
    head = "class TrainConfig:\n"
    assert source.count(head) == 1, "TrainConfig's class line moved; update the probe"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source.replace(head, head + knob_lines), spec.origin, "exec"), module.__dict__)
    import models

    models.train_config = module


def local_run(data: str, output: str, run_args: list) -> dict:
    """The command line's options, and the TrainConfig of a real run through the Trainer."""
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from cli.main import build_parser
    from core import names
    from pipeline import configs, local_runner, options

    args = build_parser().parse_args(["run", "--data", data, "--output", output, *run_args])
    parsed = options.from_args(args)
    pipeline, _ = local_runner.build(data, output, parsed)
    # A partial run up to the Trainer: the Evaluators and the Pusher add minutes and nothing here.
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=RunOptions(to_nodes=["FerTrainer"]))
    # run_fn writes the TrainConfig it trained with into the training summary.
    summaries = glob.glob(os.path.join(configs.pipeline_root(output), "FerTrainer", "model_run", "*",
                                       names.TRAINING_SUMMARY_FILE))
    trained_with = []
    for path in summaries:
        with open(path) as f:
            trained_with.append(json.load(f)["config"])
    return {"options": dataclasses.asdict(parsed.training), "run_fn": trained_with}


def kubeflow_compile(output: str, compile_args: list) -> dict:
    """The compiled spec's root parameters, the Trainer's inputs, and what run_fn gets from
    them with the runtime parameters at their defaults."""
    from tfx.types import artifact_utils, standard_artifacts

    from cli.main import main
    from components.fer_trainer import component
    from models import train_config

    assert main(["kubeflow", "compile", "--output", output, "--no-infra-validation", "--image", "i:1",
                 "--pipeline-root", "gs://b/root", *compile_args]) == 0
    with open(output) as f:
        job = json.load(f)
    parameters = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    inputs = job["pipelineSpec"]["root"]["dag"]["tasks"]["FerTrainer"]["inputs"]["parameters"]

    def artifact(cls, name, splits=None):
        a = cls()
        a.uri = os.path.join(os.path.dirname(output), name)
        if splits:
            a.split_names = artifact_utils.encode_split_names(splits)
        return a

    props = {"train_args": json.dumps({"splits": ["train"]}), "eval_args": json.dumps({"splits": ["valid"]}),
             "custom_config": inputs["custom_config"]["runtimeValue"]["constant"]}
    for name, value in inputs.items():  # a runtime parameter takes its default, as a run that does not set it
        if "componentInputParameter" in value:
            props[name] = job["runtimeConfig"]["parameterValues"][value["componentInputParameter"]]
    fn_args = component.Executor()._GetFnArgs(
        {"examples": [artifact(standard_artifacts.Examples, "ex", ["train", "valid"])],
         "transform_graph": [artifact(standard_artifacts.TransformGraph, "tg")]},
        {"model": [artifact(standard_artifacts.Model, "m")], "model_run": [artifact(standard_artifacts.ModelRun, "r")]},
        props)
    return {"parameters": parameters, "trainer_inputs": inputs,
            "run_fn": dataclasses.asdict(train_config.TrainConfig.from_dict(fn_args.custom_config))}


def main(request_path: str) -> None:
    with open(request_path) as f:
        request = json.load(f)
    install_declaration(request["knob_lines"])
    result = {"local": local_run(request["data"], request["output"], request["run_args"]),
              "kubeflow": kubeflow_compile(os.path.join(request["output"], "pipeline.json"), request["compile_args"])}
    print("KNOB_PROBE " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
