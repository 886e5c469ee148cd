"""Compiles the one create_pipeline() for Kubeflow Pipelines v2 / Vertex AI Pipelines.

The compiled file is TFX's KubeflowV2DagRunner output: a PipelineJob JSON whose
`pipelineSpec` every task runs in IMAGE with
`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor` (the
Dockerfile at the project root builds that image), and whose `runtimeConfig` holds the
pipeline root and the runtime parameters' defaults.
"""

import dataclasses
import json
import os
import tempfile
from typing import Any, Dict, Optional

import yaml
from tfx import v1 as tfx
from tfx.orchestration import data_types

from components.fer_infra_validator import component as infra_validation
from kubeflow.config import (DATA_ROOT_PARAMETER, DEFAULT_BEAM_ARGS, DEFAULT_DATA_ROOT, DEFAULT_IMAGE,
                             DEFAULT_PIPELINE_ROOT, IMAGE_SCHEMA_FILE, TEACHER_PARAMETER,
                             WARM_START_PARAMETER)
from models.train_config import TrainConfig
from pipeline import beam_dependencies, configs, options as pipeline_options
from pipeline.options import PipelineOptions
from pipeline.pipeline import create_pipeline


def default_serving_model_dir(pipeline_root: str) -> str:
    """<bucket>/serving_model/fer beside <bucket>/pipeline_root, as in the local layout."""
    return configs.serving_model_dir(os.path.dirname(pipeline_root.rstrip("/")))


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """What the pipeline does (PipelineOptions, as for a local run) and where it runs."""

    pipeline: PipelineOptions = PipelineOptions()
    image: str = DEFAULT_IMAGE
    pipeline_root: str = DEFAULT_PIPELINE_ROOT
    data_root: str = DEFAULT_DATA_ROOT
    serving_model_dir: Optional[str] = None  # default: default_serving_model_dir(pipeline_root)
    enable_infra_validation: bool = True
    serving_image: str = infra_validation.DEFAULT_SERVING_IMAGE
    serving_tag: str = infra_validation.DEFAULT_SERVING_TAG
    display_name: Optional[str] = None


def runtime_parameter_defaults(options: CompileOptions) -> Dict[str, Any]:
    """data_root, the Trainer's runtime knobs, each defaulting to what this run resolves to
    (the options' value, else the model's recipe, else TrainConfig's), and with --warm-start
    and --teacher their models as given (WarmStart and Teacher resolve them in the cluster)."""
    defaults: Dict[str, Any] = {DATA_ROOT_PARAMETER: options.data_root}
    resolved = TrainConfig.from_dict(options.pipeline.training.train_config())
    for name, ptype in pipeline_options.runtime_parameter_fields().items():
        defaults[name] = ptype(getattr(resolved, name))
    if options.pipeline.warm_start:
        defaults[WARM_START_PARAMETER] = options.pipeline.warm_start
    if options.pipeline.teacher:
        defaults[TEACHER_PARAMETER] = options.pipeline.teacher
    return defaults


def build_pipeline(options: CompileOptions) -> tfx.dsl.Pipeline:
    """create_pipeline() with the data root, the trainer knobs, the warm start and the teacher
    as runtime parameters."""
    defaults = runtime_parameter_defaults(options)
    parameter = lambda name, ptype: data_types.RuntimeParameter(name=name, ptype=ptype,  # noqa: E731
                                                                default=defaults[name])
    knobs = {name: parameter(name, ptype) for name, ptype in pipeline_options.runtime_parameter_fields().items()}
    pipeline = options.pipeline
    if pipeline.warm_start:  # WarmStart resolves it at run time: a run may start from another model
        pipeline = pipeline.replace(warm_start=parameter(WARM_START_PARAMETER, str))
    if pipeline.teacher:  # likewise Teacher resolves it at run time
        pipeline = pipeline.replace(teacher=parameter(TEACHER_PARAMETER, str))
    beam_args = options.pipeline.beam_args
    return create_pipeline(
        configs.PIPELINE_NAME,
        options.pipeline_root,
        parameter(DATA_ROOT_PARAMETER, str),
        options.serving_model_dir or default_serving_model_dir(options.pipeline_root),
        pipeline,
        schema_file=IMAGE_SCHEMA_FILE,
        runtime_knobs=knobs,
        enable_infra_validation=options.enable_infra_validation,
        infra_validation_serving_spec=infra_validation.kubernetes_serving_spec(options.serving_image, options.serving_tag),
        beam_pipeline_args=beam_dependencies.in_pipeline_image(DEFAULT_BEAM_ARGS if beam_args is None else beam_args,
                                                               options.image),
    )


YAML_SUFFIXES, JSON_SUFFIX = (".yaml", ".yml"), ".json"


def compile_pipeline(output: str, options: Optional[CompileOptions] = None) -> Dict[str, Any]:
    """Writes the compiled pipeline to `output` and returns the PipelineJob: as the bare
    PipelineSpec YAML that the kfp SDK, the kfp CLI and the KFP UI load (.yaml, .yml; the
    pipeline root as its defaultPipelineRoot), or as the PipelineJob JSON that Vertex AI
    Pipelines runs (.json)."""
    options = options or CompileOptions()
    output = os.path.abspath(output)
    if not output.endswith(YAML_SUFFIXES + (JSON_SUFFIX,)):
        raise ValueError(f"{output}: end the name in .yaml (Kubeflow Pipelines: the kfp SDK, CLI and UI) or .json "
                         "(a Vertex AI PipelineJob)")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    if output.endswith(YAML_SUFFIXES):
        with tempfile.TemporaryDirectory() as tmp:
            job = compile_pipeline(os.path.join(tmp, "pipeline.json"), options)
        spec = dict(job["pipelineSpec"], defaultPipelineRoot=job["runtimeConfig"]["gcsOutputDirectory"])
        with open(output, "w") as f:
            yaml.safe_dump(spec, f, sort_keys=True)
        return job
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=options.image,
            display_name=options.display_name,
            # Schema 2.1 (parameterType, parameterValues): what KFP 2.x and Vertex expect.
            use_pipeline_spec_2_1=True,
        ),
        output_dir=os.path.dirname(output),
        output_filename=os.path.basename(output),
    )
    if os.path.exists(output):  # TFX refuses to overwrite; a re-compile replaces the file
        os.remove(output)
    defaults = runtime_parameter_defaults(options)
    # TFX writes the defaults into runtimeConfig only (what Vertex reads). The KFP API takes
    # the bare pipelineSpec, so they also go where the KFP SDK puts them: defaultValue on the
    # root's input definitions, which makes each parameter optional at submission.
    runner.run(build_pipeline(options), parameter_values=defaults, write_out=True)
    with open(output) as f:
        job = json.load(f)
    for name, spec in job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"].items():
        spec["defaultValue"] = defaults[name]
        spec["isOptional"] = True
    with open(output, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
    return job
