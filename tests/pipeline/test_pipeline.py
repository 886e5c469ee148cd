"""create_pipeline(): which components, wired how, for each flag."""

import json

from pipeline import configs
from pipeline.pipeline import create_pipeline

ALL = ["FerExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ClassBalanceCheck", "Transform",
       "FerTrainer", "latest_blessed_model_resolver", "Evaluator", "Pusher"]


def build(**flags):
    return create_pipeline("fer", "/tmp/root", "/data", "/serving/fer", data_file_pattern="fer.csv.gz", **flags)


def ids(pipeline):
    return [c.id for c in pipeline.components]


def test_default_pipeline():
    pipeline = build(train_config={"epochs": 3})
    assert sorted(ids(pipeline)) == sorted(ALL)
    components = {c.id: c for c in pipeline.components}
    trainer = components["FerTrainer"]
    config = json.loads(trainer.exec_properties["custom_config"])
    assert config == {"epochs": 3, "use_class_weights": False}
    assert trainer.exec_properties["run_fn"] == configs.RUN_FN
    assert components["Transform"].exec_properties["preprocessing_fn"] == configs.PREPROCESSING_FN
    assert "class_balance" in trainer.inputs
    assert json.loads(components["Evaluator"].exec_properties["example_splits"]) == ["eval"]
    assert json.loads(components["Pusher"].exec_properties["push_destination"])["filesystem"]["base_directory"] == "/serving/fer"
    assert pipeline.enable_cache


def test_flags():
    assert sorted(ids(build(enable_training=False))) == sorted(ALL[:6])
    assert "InferredSchemaGen" in ids(build(enable_inferred_schema=True))
    trainer = {c.id: c for c in build(enable_class_weights=True).components}["FerTrainer"]
    assert json.loads(trainer.exec_properties["custom_config"])["use_class_weights"] is True


def test_beam_args_reach_the_pipeline():
    pipeline = build(beam_pipeline_args=["--direct_num_workers=2"])
    assert pipeline.beam_pipeline_args == ["--direct_num_workers=2"]
