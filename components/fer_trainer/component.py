"""FerTrainer: TFX's Trainer plus an optional `class_balance` input.

TFX's Trainer has no slot for a custom artifact, and the class weights the validation
step computes must reach run_fn. This component keeps the Trainer's spec, executor and
behaviour and adds the input; its executor hands the artifact's location to run_fn as
custom_config['class_balance_uri'].
"""

from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.standard_component_specs import TrainerSpec
from tfx.utils import json_utils

from components.class_balance.component import ClassBalance

CLASS_BALANCE_KEY = "class_balance"


class FerTrainerSpec(TrainerSpec):
    INPUTS = {**TrainerSpec.INPUTS, CLASS_BALANCE_KEY: ChannelParameter(type=ClassBalance, optional=True)}


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]], output_dict, exec_properties: Dict[str, Any]):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        if input_dict.get(CLASS_BALANCE_KEY):
            config = dict(fn_args.custom_config or {})
            config["class_balance_uri"] = artifact_utils.get_single_uri(input_dict[CLASS_BALANCE_KEY])
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
        hyperparameters: Optional[types.BaseChannel] = None,
        train_args: Optional[trainer_pb2.TrainArgs] = None,
        eval_args: Optional[trainer_pb2.EvalArgs] = None,
        custom_config: Optional[Dict[str, Any]] = None,
    ):
        spec = FerTrainerSpec(
            examples=examples,
            transform_graph=transform_graph,
            schema=schema,
            base_model=base_model,
            hyperparameters=hyperparameters,
            class_balance=class_balance,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config or {}),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
