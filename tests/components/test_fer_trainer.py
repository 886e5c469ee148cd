"""FerTrainer: the Trainer plus the class-balance input handed to run_fn."""

import json

import pytest

from tfx.types import artifact_utils, standard_artifacts

from fer_artifacts import ClassBalance
from components.fer_trainer import component


def _artifact(cls, uri, splits=None):
    a = cls()
    a.uri = str(uri)
    if splits:
        a.split_names = artifact_utils.encode_split_names(splits)
    return a


def _fn_args(tmp_path, with_balance, teacher=None, **knobs):
    inputs = {
        "examples": [_artifact(standard_artifacts.Examples, tmp_path / "ex", ["train", "eval"])],
        "transform_graph": [_artifact(standard_artifacts.TransformGraph, tmp_path / "tg")],
    }
    if with_balance:
        from components.class_balance import logic

        logic.write_report(logic.analyze({"train": [10, 1, 10, 10, 10, 10, 10]}), str(tmp_path / "cb"))
        inputs["class_balance"] = [_artifact(ClassBalance, tmp_path / "cb")]
    if teacher:
        inputs["teacher"] = [_artifact(standard_artifacts.Model, teacher)]
    outputs = {
        "model": [_artifact(standard_artifacts.Model, tmp_path / "model")],
        "model_run": [_artifact(standard_artifacts.ModelRun, tmp_path / "run")],
    }
    props = {"train_args": json.dumps({"splits": ["train"]}), "eval_args": json.dumps({"splits": ["eval"]}),
             "custom_config": json.dumps({"epochs": 3}), **knobs}
    return component.Executor()._GetFnArgs(inputs, outputs, props)


def test_executor_hands_over_the_reports_class_weights(tmp_path):
    fn_args = _fn_args(tmp_path, with_balance=True)
    weights = fn_args.custom_config.pop("class_weights")
    assert fn_args.custom_config == {"epochs": 3}
    assert set(weights) == set(range(7)) and weights[1] == pytest.approx(61 / 7)


def test_executor_without_class_balance_keeps_config(tmp_path):
    assert _fn_args(tmp_path, with_balance=False).custom_config == {"epochs": 3}


def test_knobs_override_custom_config(tmp_path):
    fn_args = _fn_args(tmp_path, with_balance=False, epochs=7, batch_size=None, learning_rate=0.001)
    assert fn_args.custom_config == {"epochs": 7, "learning_rate": 0.001}


def test_component_spec_has_the_extra_optional_input():
    spec_input = component.FerTrainerSpec.INPUTS[component.CLASS_BALANCE_KEY]
    assert spec_input.type is ClassBalance and spec_input.optional
    assert set(component.FerTrainerSpec.OUTPUTS) == {"model", "model_run"}


def test_knobs_are_optional_typed_execution_parameters():
    for name, ptype in component.KNOBS.items():
        parameter = component.FerTrainerSpec.PARAMETERS[name]
        assert parameter.type is ptype and parameter.optional


def test_executor_hands_over_the_teachers_members(tmp_path):
    from components.teacher import logic
    from models import warm_start

    artifact = tmp_path / "teacher"
    logic.stage("shipped,shipped", str(artifact))
    fn_args = _fn_args(tmp_path, with_balance=False, teacher=artifact)
    assert fn_args.custom_config == {"epochs": 3, "teacher_dirs": [str(artifact / "members" / "00"),
                                                                   str(artifact / "members" / "01")]}
    assert warm_start.resolve(fn_args.custom_config["teacher_dirs"][1]) == str(artifact / "members" / "01")
    spec_input = component.FerTrainerSpec.INPUTS[component.TEACHER_KEY]
    assert spec_input.type is standard_artifacts.Model and spec_input.optional
