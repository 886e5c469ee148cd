"""create_pipeline(): the one definition of the FER pipeline, for every runner.

FerExampleGen (a CSV) or FerImageGen (image folders) -> ImportSchemaGen -> StatisticsGen -> ExampleValidator
                                               \-> ClassBalanceCheck
-> Transform -> [Tuner] -> FerTrainer -> (latest blessed model, or [WarmStart]) -> Evaluator -> [FerInfraValidator] -> FerPusher
                                                                  \-> TestEvaluator (PrivateTest, reported only)
With --warm-start, WarmStart's Model is FerTrainer's base_model and the Evaluator's baseline;
with --teacher, [Teacher]'s Model is FerTrainer's `teacher` (distillation).
Model selection (the Trainer's early stopping and plateau, the Tuner's scoring) sees only the
`valid` carve of Training; the Evaluators report on `eval` (PublicTest) and `test`.
"""

from typing import Any, List, Mapping, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_node
from tfx.orchestration import data_types
from tfx.proto import infra_validator_pb2

from components.class_balance.component import ClassBalanceCheck
from components.fer_evaluator.component import FerEvaluator, FerReportEvaluator
from components.fer_example_gen.component import FerExampleGen
from components.fer_image_gen.component import FerImageGen
from components.fer_infra_validator import component as infra_validation
from components.fer_pusher.component import FerPusher
from components.fer_trainer import component as fer_trainer
from components.teacher.component import Teacher
from components.warm_start.component import WarmStart
from core import features
from models import tuning
from pipeline import configs, eval_config
from pipeline.options import IMAGES_INPUT, PipelineOptions
from schema import SCHEMA_FILE


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    options: PipelineOptions = PipelineOptions(),
    *,
    data_file_pattern: str = "*.csv*",
    schema_file: str = SCHEMA_FILE,
    preprocessing_fn: str = configs.PREPROCESSING_FN,
    run_fn: str = configs.RUN_FN,
    tuner_fn: str = configs.TUNER_FN,
    runtime_knobs: Optional[Mapping[str, data_types.RuntimeParameter]] = None,
    enable_infra_validation: bool = False,
    infra_validation_serving_spec: Optional[infra_validator_pb2.ServingSpec] = None,
    enable_cache: bool = True,
    metadata_connection_config: Optional[Any] = None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline that `options` (pipeline/options.py) describe.

    Args:
      data_root: directory holding the FER CSV(s) matched by `data_file_pattern`, or with
        options.input_format "images" the image folder itself; a str or a RuntimeParameter (KFP).
      serving_model_dir: Pusher destination; models land in <serving_model_dir>/<version>.
      schema_file: the curated schema; its path inside the container image on a cluster.
      runtime_knobs: RuntimeParameters (KFP) for FerTrainer's knobs (models/train_config.py
        RUNTIME_KNOBS), in place of the options' values.
      enable_infra_validation: serve the candidate with TF Serving before pushing, as
        `infra_validation_serving_spec` says (needs a container platform: Kubeflow variant).
      beam_pipeline_args: resolved by the runner (its defaults unless options.beam_args).
    """
    if enable_infra_validation and infra_validation_serving_spec is None:
        raise ValueError("enable_infra_validation needs infra_validation_serving_spec")
    if options.input_format == IMAGES_INPUT:  # one ExampleGen per input format, the same outputs
        example_gen = FerImageGen(
            input_base=data_root,
            max_reject_fraction=options.max_reject_fraction,
            max_rows_per_split=options.max_rows_per_split,
            crop_faces=options.crop_faces,
            face_detector=options.face_detector,
        )
    else:
        example_gen = FerExampleGen(
            input_base=data_root,
            file_pattern=data_file_pattern,
            max_reject_fraction=options.max_reject_fraction,
            max_rows_per_split=options.max_rows_per_split,
        )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    class_balance = ClassBalanceCheck(
        statistics=statistics_gen.outputs["statistics"],
        min_class_share=options.min_class_share,
        max_distribution_distance=options.max_distribution_distance,
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=preprocessing_fn,
    )
    tuner = None
    if options.tune:
        tuner = tfx.components.Tuner(
            tuner_fn=tuner_fn,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=[features.TRAIN_SPLIT]),
            eval_args=tfx.proto.EvalArgs(splits=[features.VALID_SPLIT]),
            custom_config=tuning.tuner_config(options.trainer_config(), options.tuning_trials,
                                              options.tuning_epochs_per_trial),
        )
    # --warm-start: the Trainer starts from it (TFX's base_model input) and the Evaluator blesses
    # against it. WarmStart resolves options.warm_start (`shipped`, a SavedModel, a pushed model's
    # base path or a Model artifact; a str, or a RuntimeParameter on Kubeflow) where the task runs
    # and copies it into a Model artifact.
    warm_start = WarmStart(source=options.warm_start).with_id("warm_start") if options.warm_start else None
    # --teacher: distillation. Teacher resolves the SavedModels where the task runs and copies them
    # into one Model artifact, FerTrainer's `teacher` input.
    teacher = Teacher(sources=options.teacher).with_id("teacher") if options.teacher else None
    trainer = fer_trainer.FerTrainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        class_balance=class_balance.outputs["class_balance"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        run_fn=run_fn,
        base_model=warm_start.outputs["model"] if warm_start else None,
        teacher=teacher.outputs["model"] if teacher else None,
        train_args=tfx.proto.TrainArgs(splits=[features.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[features.VALID_SPLIT]),
        custom_config=options.trainer_config(),
        runtime_parameters=runtime_knobs,
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = FerEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=(warm_start or model_resolver).outputs["model"],
        eval_config=eval_config.make_eval_config(options.accuracy_lower_bound, options.regression_tolerance),
        example_splits=[features.EVAL_SPLIT],
    ).with_id("Evaluator")
    # PrivateTest, when the file has it: reported beside PublicTest, never blessing.
    test_evaluator = FerReportEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config.make_eval_config(None),
        example_splits=[features.TEST_SPLIT],
    ).with_id("TestEvaluator")
    infra_validator = None
    if enable_infra_validation:
        infra_validator = infra_validation.FerInfraValidator(
            model=trainer.outputs["model"],
            examples=example_gen.outputs["examples"],
            serving_spec=infra_validation_serving_spec,
            validation_spec=infra_validation.VALIDATION_SPEC,
            request_spec=infra_validation.request_spec(),
        ).with_id("InfraValidator")
    pusher = FerPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"] if infra_validator else None,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    ).with_id("Pusher")

    components: List[base_node.BaseNode] = [example_gen, schema_gen, statistics_gen, example_validator, class_balance,
                                            transform]
    if options.enable_training:
        components += ([tuner] if tuner else []) + ([teacher] if teacher else []) + [warm_start or model_resolver, trainer, evaluator, test_evaluator] + ([infra_validator] if infra_validator else []) + [pusher]
    if options.enable_inferred_schema:
        components.insert(3, tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"]).with_id("InferredSchemaGen"))
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
