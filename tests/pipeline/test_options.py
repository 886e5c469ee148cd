"""PipelineOptions: one typed path from the command line to the Trainer. Every training
field reaches the Trainer's config unchanged on both runners; the flags, their defaults and
their help come from the fields."""

import dataclasses
import json

import pytest
from tfx.types import artifact_utils, standard_artifacts

from components.fer_trainer import component as fer_trainer
from models import catalog, train_config
from pipeline import local_runner, options
from pipeline.options import PipelineOptions, TrainingOptions

# A value for every training field that differs from its default and from vgg_bn's recipe.
EVERY_FIELD = TrainingOptions(model="vgg_bn", epochs=7, batch_size=48, learning_rate=0.003, optimizer="rmsprop",
                              lr_schedule="cosine", warmup_epochs=3, patience=6, label_smoothing=0.2, mixup=0.3,
                              random_erasing=0.4, distill_alpha=0.7, distill_temperature=3.0, augment=False, tta=False,
                              precision="mixed_bfloat16", resume=True,
                              checkpoint_dir="/ckpt/vgg")


def test_every_training_field_is_covered_here():
    for f in dataclasses.fields(TrainingOptions):
        assert getattr(EVERY_FIELD, f.name) != f.default, f.name
        recipe = catalog.train_defaults(EVERY_FIELD.model)
        assert recipe.get(f.name, train_config.field_default(f.name)) != getattr(EVERY_FIELD, f.name), f.name


def _trainer_config(custom_config: str, knobs: dict, tmp_path) -> train_config.TrainConfig:
    """What run_fn receives: the FerTrainer executor's merge of custom_config and the knobs."""
    def artifact(cls, name, splits=None):
        a = cls()
        a.uri = str(tmp_path / name)
        if splits:
            a.split_names = artifact_utils.encode_split_names(splits)
        return a

    inputs = {"examples": [artifact(standard_artifacts.Examples, "ex", ["train", "valid"])],
              "transform_graph": [artifact(standard_artifacts.TransformGraph, "tg")]}
    outputs = {"model": [artifact(standard_artifacts.Model, "m")], "model_run": [artifact(standard_artifacts.ModelRun, "r")]}
    props = {"train_args": json.dumps({"splits": ["train"]}), "eval_args": json.dumps({"splits": ["valid"]}),
             "custom_config": custom_config, **knobs}
    fn_args = fer_trainer.Executor()._GetFnArgs(inputs, outputs, props)
    return train_config.TrainConfig.from_dict(fn_args.custom_config)


def _assert_reached(config, training):
    for f in dataclasses.fields(TrainingOptions):
        assert getattr(config, f.name) == getattr(training, f.name), f.name


def test_every_training_field_reaches_the_trainer_unchanged_on_the_local_runner(tmp_path, demo_csv):
    pipeline, _ = local_runner.build(demo_csv, str(tmp_path / "out"), PipelineOptions(training=EVERY_FIELD))
    trainer = {c.id: c for c in pipeline.components}["FerTrainer"]
    props = trainer.exec_properties
    config = _trainer_config(props["custom_config"], {k: props[k] for k in fer_trainer.KNOBS}, tmp_path)
    _assert_reached(config, EVERY_FIELD)


def test_every_training_field_reaches_the_trainer_unchanged_on_kubeflow(tmp_path):
    from kubeflow import runner

    job = runner.compile_pipeline(str(tmp_path / "p.json"), runner.CompileOptions(
        pipeline=PipelineOptions(training=EVERY_FIELD), enable_infra_validation=False))
    inputs = job["pipelineSpec"]["root"]["dag"]["tasks"]["FerTrainer"]["inputs"]["parameters"]
    custom_config = inputs["custom_config"]["runtimeValue"]["constant"]
    # The knobs are runtime parameters: what a run gets when it does not set them.
    knobs = {}
    for name in fer_trainer.KNOBS:
        assert inputs[name]["componentInputParameter"] == name
        knobs[name] = job["runtimeConfig"]["parameterValues"][name]
    assert set(knobs) == set(options.runtime_parameter_fields())
    _assert_reached(_trainer_config(custom_config, knobs, tmp_path), EVERY_FIELD)


def test_the_command_line_gives_the_same_options():
    import argparse

    parser = argparse.ArgumentParser()
    options.add_arguments(parser, options.LOCAL)
    args = parser.parse_args(["--model", "vgg_bn", "--epochs", "7", "--batch-size", "48", "--learning-rate", "0.003",
                              "--optimizer", "rmsprop", "--lr-schedule", "cosine", "--warmup-epochs", "3",
                              "--patience", "6", "--label-smoothing", "0.2", "--mixup", "0.3", "--random-erasing", "0.4",
                              "--distill-alpha", "0.7", "--distill-temperature", "3", "--no-augment", "--no-tta", "--precision", "mixed_bfloat16", "--resume",
                              "--max-rows", "50", "--class-weights", "--tune", "--beam-arg=--a=1", "--beam-arg=--b=2"])
    built = options.from_args(args, checkpoint_dir="/ckpt/vgg")
    assert built == PipelineOptions(training=EVERY_FIELD, max_rows_per_split=50, enable_class_weights=True, tune=True,
                                    beam_args=("--a=1", "--b=2"))
    teacher = options.from_args(parser.parse_args(["--teacher", "shipped,/runs/fer"]))
    assert teacher == PipelineOptions(teacher="shipped,/runs/fer")
    assert options.from_args(parser.parse_args([])) == PipelineOptions()


def test_help_shows_the_defaults_from_their_homes():
    import argparse

    parser = argparse.ArgumentParser()
    options.add_arguments(parser, options.KUBEFLOW)
    text = " ".join(parser.format_help().split())
    assert f"compact_resnet_v2 {catalog.COMPACT_RESNET_V2_RECIPE['epochs']}), else {train_config.field_default('epochs')}" in text
    assert (f"compact_resnet {catalog.COMPACT_RESNET_RECIPE['batch_size']}, "
            f"compact_resnet_v2 {catalog.COMPACT_RESNET_V2_RECIPE['batch_size']}), "
            f"else {train_config.field_default('batch_size')}") in text
    assert "--resume" not in text  # a local checkpoint directory: the local runner only
    assert f"(default: {PipelineOptions.accuracy_lower_bound})" in text


def test_options_are_frozen_and_tf_free():
    import subprocess
    import sys

    with pytest.raises(dataclasses.FrozenInstanceError):
        PipelineOptions().max_rows_per_split = 3
    code = "import sys; import pipeline.options; sys.exit('tensorflow' in sys.modules or 'tfx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_catalogue_and_registry_agree():
    from models import registry

    assert set(registry.MODELS) == set(catalog.ENTRIES)
    for name, entry in catalog.ENTRIES.items():
        assert registry.build(name).name == name
        assert registry.spec(name).train_defaults == entry.train_defaults
