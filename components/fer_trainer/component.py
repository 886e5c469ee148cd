"""FerTrainer: TFX's Trainer plus optional `class_balance` and `teacher` inputs and typed knobs.

TFX's Trainer has no slot for a custom artifact, and the class weights the validation
step computes must reach run_fn. This component keeps the Trainer's spec, executor and
behaviour and adds the input; its executor reads the report and hands the balanced weights
to run_fn as custom_config['class_weights'] ({class id: weight}), so models/ never reads a
component's artifact. Likewise a `teacher` Model (components/teacher) reaches run_fn as
custom_config['teacher_dirs'], its members' SavedModel folders.

`custom_config` is one JSON string, so an orchestrator cannot set a single value in it at
run time. The knobs users change per run (models/train_config.py declares them with
`runtime=True`: epochs, batch size, learning rate) therefore travel as execution parameters
of their own, which KFP v2 / Vertex can bind to pipeline runtime parameters: FerTrainer takes
the whole TrainConfig as `custom_config`, moves those knobs out of it, and its executor puts
them back before run_fn reads it. The parameters come from the declaration, so a new runtime
knob needs no change here.
"""

from typing import Any, Dict, List, Mapping, Optional, Union

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import TrainerSpec
from tfx.utils import json_utils

from components.class_balance import logic as class_balance_logic
from components.teacher import logic as teacher_logic
from fer_artifacts import ClassBalance
from models.train_config import RUNTIME_KNOBS

CLASS_BALANCE_KEY = "class_balance"
TEACHER_KEY = "teacher"
# Execution parameter name -> its type: TrainConfig's runtime knobs.
KNOBS = RUNTIME_KNOBS

Knob = Union[int, float, data_types.RuntimeParameter, None]


def as_knob(name: str, value: Any) -> Knob:
    """A knob's value in its declared type (a RuntimeParameter stays as it is)."""
    if name not in KNOBS:
        raise ValueError(f"{name!r} is no runtime knob of the Trainer; those are: {', '.join(KNOBS)}")
    if isinstance(value, data_types.RuntimeParameter):
        if value.ptype is not KNOBS[name]:
            raise TypeError(f"runtime parameter {value.name!r} for {name} must have ptype {KNOBS[name].__name__}")
        return value
    return KNOBS[name](value)


class FerTrainerSpec(TrainerSpec):
    INPUTS = {**TrainerSpec.INPUTS, CLASS_BALANCE_KEY: ChannelParameter(type=ClassBalance, optional=True),
              TEACHER_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True)}
    PARAMETERS = {
        **TrainerSpec.PARAMETERS,
        **{name: ExecutionParameter(type=ptype, optional=True) for name, ptype in KNOBS.items()},
    }


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]], output_dict, exec_properties: Dict[str, Any]):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        config = dict(fn_args.custom_config or {})
        for name, ptype in KNOBS.items():
            if exec_properties.get(name) is not None:
                config[name] = ptype(exec_properties[name])
        if input_dict.get(CLASS_BALANCE_KEY):
            report = class_balance_logic.read_report(artifact_utils.get_single_uri(input_dict[CLASS_BALANCE_KEY]))
            config["class_weights"] = class_balance_logic.report_class_weights(report)
        if input_dict.get(TEACHER_KEY):
            config["teacher_dirs"] = teacher_logic.member_dirs(artifact_utils.get_single_uri(input_dict[TEACHER_KEY]))
        fn_args.custom_config = config
        return fn_args


class FerTrainer(base_component.BaseComponent):
    SPEC_CLASS = FerTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        run_fn: str,
        schema: Optional[types.BaseChannel] = None,
        class_balance: Optional[types.BaseChannel] = None,
        base_model: Optional[types.BaseChannel] = None,
        teacher: Optional[types.BaseChannel] = None,
        hyperparameters: Optional[types.BaseChannel] = None,
        train_args: Optional[trainer_pb2.TrainArgs] = None,
        eval_args: Optional[trainer_pb2.EvalArgs] = None,
        custom_config: Optional[Mapping[str, Any]] = None,
        runtime_parameters: Optional[Mapping[str, data_types.RuntimeParameter]] = None,
    ):
        """custom_config: run_fn's TrainConfig values (models/train_config.py); its runtime
        knobs become execution parameters. runtime_parameters: RuntimeParameters (KFP) for
        runtime knobs, in place of custom_config's values."""
        config = dict(custom_config or {})
        knobs = {name: config.pop(name) for name in KNOBS if config.get(name) is not None}
        knobs.update(runtime_parameters or {})
        spec = FerTrainerSpec(
            examples=examples,
            transform_graph=transform_graph,
            schema=schema,
            base_model=base_model,
            hyperparameters=hyperparameters,
            class_balance=class_balance,
            teacher=teacher,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            run_fn=run_fn,
            custom_config=json_utils.dumps(config),
            **{name: as_knob(name, value) for name, value in knobs.items()},
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
