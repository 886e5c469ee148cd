"""PipelineOptions: the one typed, frozen, TF-free description of what a pipeline run is asked
to do, with the Trainer's knobs nested as TrainingOptions.

The CLI builds it once (`add_arguments` makes the flags, their types, choices, defaults and
help texts from the fields here; `from_args` reads them back); create_pipeline(), the local
runner and the Kubeflow compiler consume it. Adding a pipeline option is one field here (its
flag and help in the metadata) plus its use.

TrainingOptions is not written here: it is derived from the knobs that models/train_config.py
declares on TrainConfig (name, type, default, help, flag, runtime parameter or not), so adding
a training knob is one knob() field there plus its use in models/trainer.py. A training field
left at None takes the model's recipe (models/catalog.py), then TrainConfig's default; its
help says which.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Dict, Optional, Tuple

from components.class_balance import logic as class_balance_logic
from components.fer_example_gen import parser as csv_parser
from core import arg_types, names
from models import catalog, train_config
from pipeline import configs

LOCAL, KUBEFLOW = "local", "kubeflow"
CSV_INPUT, IMAGES_INPUT = "csv", "images"
INPUT_FORMATS = (CSV_INPUT, IMAGES_INPUT)
DETECTORS = names.DETECTOR_NAMES  # client/detectors.py builds them (and loads OpenCV)
BOTH = (LOCAL, KUBEFLOW)


def option(default: Any = None, help: str = "", *, flag: Optional[str] = None, choices: Optional[Tuple] = None,
           runners: Tuple[str, ...] = BOTH, metavar: Optional[str] = None, factory=None, parse=None):
    """A field with its command-line flag. `runners`: the commands that offer it (empty: none,
    the field is set by code only). `parse`: the argparse type when the field's own type is not
    enough (a range: core/arg_types.py)."""
    metadata = {"help": help, "flag": flag, "choices": choices, "runners": runners, "metavar": metavar,
                "parse": parse}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _recipe_default(name: str) -> str:
    """'the model's recipe (vgg_bn 0.001, ...), else X' for a training knob left at None."""
    recipes = ", ".join(f"{m} {e.train_defaults[name]}" for m, e in catalog.ENTRIES.items() if name in e.train_defaults)
    default = train_config.field_default(name)
    return f"the model's recipe ({recipes}), else {default}" if recipes else str(default)


def _training_field(knob: dataclasses.Field, hint) -> tuple:
    """(name, type, field) of TrainingOptions for a TrainConfig knob: one the catalogue's
    recipes may set is Optional and None (not given); the others keep TrainConfig's default."""
    meta = knob.metadata
    if meta["recipe"]:
        hint, default = Optional[hint], None
    else:
        default = knob.default
    return knob.name, hint, option(default, meta["help"], choices=meta["choices"], runners=meta["runners"],
                                   metavar=meta["metavar"], parse=meta["parse"])


def _train_config_values(self) -> Dict[str, Any]:
    """The TrainConfig values this run gives (None: the recipe's)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


TrainingOptions = dataclasses.make_dataclass(
    "TrainingOptions",
    [_training_field(knob, train_config.knob_types()[name]) for name, knob in train_config.knobs().items()],
    namespace={"train_config": _train_config_values, "__module__": __name__,
               "__doc__": "The Trainer's knobs: TrainConfig's knob() fields, handed to it unchanged (None: not "
                          "given)."},
    frozen=True,
)


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    training: TrainingOptions = option(help="the Trainer's knobs", factory=TrainingOptions)
    max_rows_per_split: Optional[int] = option(None, "at most N rows of each split, in file order (smoke runs)",
                                               flag="--max-rows", parse=arg_types.positive_int)
    max_reject_fraction: float = option(csv_parser.DEFAULT_MAX_REJECT_FRACTION,
                                        "FerExampleGen fails the run when more of the rows than this are rejected",
                                        parse=arg_types.fraction)
    input_format: str = option(CSV_INPUT, "the data: a FER CSV, or a folder of images (DIR/<split>/<emotion>/* or "
                                          "DIR/<emotion>/*) read by FerImageGen", choices=INPUT_FORMATS,
                               runners=(KUBEFLOW,))
    crop_faces: bool = option(False, "image folders: run the face detector first and keep the largest face (an "
                                     "image without one is quarantined)")
    face_detector: str = option("haar", "image folders: the detector of --crop-faces", flag="--detector",
                                choices=DETECTORS)
    warm_start: Optional[str] = option(None, "fine-tune from a SavedModel: `shipped` (models/pretrained/), a pushed "
                                             "model's folder or its base path (newest version), with the fine-tuning "
                                             "recipe of models/warm_start.py; the Evaluator then blesses against it",
                                       metavar="PATH")
    teacher: Optional[str] = option(None, "distil from a teacher: one or more SavedModels, comma-separated, each as "
                                          "--warm-start takes it (`shipped`, a pushed model's folder or base path); "
                                          "their averaged probabilities blend into the training targets "
                                          "(--distill-alpha, --distill-temperature; models/distillation.py)",
                                    metavar="PATHS")
    # Not capped at 1: a bound above it declines every model, which evaluates without pushing.
    accuracy_lower_bound: float = option(configs.DEFAULT_ACCURACY_LOWER_BOUND,
                                         "blessing: lowest overall PublicTest accuracy (above 1: never bless)",
                                         flag="--accuracy-threshold", parse=arg_types.non_negative_float)
    regression_tolerance: float = option(0.0, "blessing: how far (absolute accuracy) a candidate may fall below "
                                              "the latest blessed model", runners=())
    min_class_share: float = option(class_balance_logic.DEFAULT_MIN_SHARE,
                                    "class balance: a class below this share of a split is flagged", runners=())
    max_distribution_distance: float = option(class_balance_logic.DEFAULT_MAX_DISTANCE,
                                              "class balance: label drift bound (L-inf) against train", runners=())
    enable_class_weights: bool = option(False, "train with the class-balance check's balanced class weights",
                                        flag="--class-weights")
    enable_inferred_schema: bool = option(False, "also run SchemaGen (inferred) for comparison with schema/",
                                          flag="--inferred-schema", runners=(LOCAL,))
    enable_training: bool = option(True, "False stops after Transform (data stages only)", runners=())
    tune: bool = option(False, "run TFX's Tuner first (optimizer, learning rate, batch size); the best values "
                               "train the model")
    tuning_trials: int = option(configs.DEFAULT_TUNING_TRIALS, "Tuner trial budget", flag="--tune-trials",
                                parse=arg_types.positive_int)
    tuning_epochs_per_trial: int = option(configs.DEFAULT_TUNING_EPOCHS_PER_TRIAL, "epochs per Tuner trial",
                                          flag="--tune-epochs", parse=arg_types.positive_int)
    beam_args: Optional[Tuple[str, ...]] = option(
        None, "Beam pipeline argument (repeatable); replaces the runner's defaults", flag="--beam-arg")

    def trainer_config(self) -> Dict[str, Any]:
        """The TrainConfig values the Trainer gets: the knobs given (the rest: the model's recipe
        decides, in run_fn) and whether it weighs the classes."""
        values = {k: v for k, v in self.training.train_config().items() if v is not None}
        return {**values, "use_class_weights": self.enable_class_weights}

    def replace(self, **changes) -> "PipelineOptions":
        """A copy with fields changed; training fields may be given by name too."""
        training = {k: changes.pop(k) for k in list(changes) if k in _TRAINING_FIELDS}
        if training:
            changes["training"] = dataclasses.replace(changes.get("training", self.training), **training)
        return dataclasses.replace(self, **changes)


def distillation_problem(options: PipelineOptions) -> Optional[str]:
    """What is wrong with the options' distillation, in one line, or None. The teacher's list is
    only split here; whether each entry is a model is checked where it is resolved."""
    from components.teacher import logic as teacher_logic
    from models import warm_start

    distill = {name: getattr(options.training, name) for name in ("distill_alpha", "distill_temperature")}
    if options.teacher is None:
        given = [f"--{name.replace('_', '-')}" for name, value in distill.items() if value is not None]
        return f"{' and '.join(given)} without --teacher: nothing to distil from" if given else None
    try:
        teacher_logic.split_sources(options.teacher)
    except warm_start.WarmStartError as e:
        return str(e)
    if options.enable_class_weights:
        # Keras weighs each image by its target's argmax, which the teacher's share can move.
        return "--class-weights with --teacher: the blended targets would pick the class weights; give one or the other"
    return None


def beam_args_problem(options: PipelineOptions) -> Optional[str]:
    """Beam's reason for refusing the --beam-arg list, in one line, or None. Beam would
    otherwise print its whole usage and exit inside the first Beam stage."""
    from pipeline import beam_portable

    reason = beam_portable.refusal(options.beam_args)
    return f"--beam-arg: Beam refuses the list ({reason})" if reason else None


_TRAINING_FIELDS = {f.name for f in dataclasses.fields(TrainingOptions)}
_HINTS = {cls: typing.get_type_hints(cls) for cls in (TrainingOptions, PipelineOptions)}


def _base_type(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _flags(cls, runner: str):
    for f in dataclasses.fields(cls):
        if f.name == "training":
            continue
        if runner in f.metadata["runners"]:
            yield f, f.metadata["flag"] or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, runner: str, notes: Optional[Dict[str, str]] = None) -> None:
    """The flags of every option `runner` offers, typed, with choices and defaults in the help;
    `notes` adds a runner's own words to a field's help (by field name)."""
    for cls in (TrainingOptions, PipelineOptions):
        for f, flag in _flags(cls, runner):
            hint = _base_type(_HINTS[cls][f.name])
            meta = f.metadata
            shown = f.default
            if cls is TrainingOptions and f.default is None and train_config.field_default(f.name) is not None:
                shown = _recipe_default(f.name)
            help_text = meta["help"] + ((notes or {}).get(f.name) or "")
            kwargs: Dict[str, Any] = {"dest": f.name}
            if hint is bool and f.default is None:
                kwargs.update(action=argparse.BooleanOptionalAction, default=None)
            elif hint is bool:
                kwargs.update(action="store_true", default=f.default)
                shown = None
            elif typing.get_origin(hint) is tuple:
                kwargs.update(action="append", default=None)
                shown = None
            else:
                kwargs.update(type=meta["parse"] or hint, default=f.default)
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
            if not meta["choices"] and "type" in kwargs:
                kwargs["metavar"] = meta["metavar"] or flag.lstrip("-").upper().replace("-", "_")
            if shown is not None:
                help_text += f" (default: {shown})".replace("%", "%%")
            parser.add_argument(flag, help=help_text, **kwargs)


def from_args(args: argparse.Namespace, **fixed) -> PipelineOptions:
    """The options a parsed command line gives (fields its command does not offer keep their
    defaults); `fixed` sets fields by name, training ones included."""
    given = {k: v for k, v in vars(args).items()}
    training = {f.name: given[f.name] for f in dataclasses.fields(TrainingOptions) if f.name in given}
    top = {f.name: given[f.name] for f in dataclasses.fields(PipelineOptions)
           if f.name in given and f.name != "training"}
    if top.get("beam_args") is not None:
        top["beam_args"] = tuple(top["beam_args"])
    return PipelineOptions(training=TrainingOptions(**training), **top).replace(**fixed)


def runtime_parameter_fields() -> Dict[str, type]:
    """The training fields KFP declares as runtime parameters (FerTrainer's execution
    parameters), with their types."""
    return {name: ptype for name, ptype in train_config.RUNTIME_KNOBS.items() if name in _TRAINING_FIELDS}
