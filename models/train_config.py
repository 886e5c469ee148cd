"""TrainConfig: what one training run does, TF-free (the CLI's help, pipeline/options.py and
the Kubeflow compiler read its defaults without loading Keras; models/trainer.py trains with
it).

TrainConfig is also where a training knob is declared, once: a field made with `knob()` has
its type and default here, and its help text, its command-line flag and whether it is a
runtime parameter in the field's metadata. From these, pipeline/options.py derives
TrainingOptions and the flags of `fer-pipeline run` and `kubeflow compile`, and
components/fer_trainer derives FerTrainer's execution parameters (which the Kubeflow compiler
declares as runtime parameters). Adding a knob is one `knob()` field here plus its use in
models/trainer.py.

Paper settings (defaults): Adam lr 1e-4 with Keras' legacy `decay=1e-6`; batch 128; up to
100 epochs; early stopping with patience 4 on validation accuracy. A model's catalogue entry
may bring its own recipe (models/catalog.py); the run's values override both, and the Tuner's
best hyperparameters override all.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Dict, List, Optional, Tuple

from core import arg_types
from models import catalog

PRECISIONS = ("float32", "mixed_bfloat16")  # keras dtype policies for training
# Table V's three (SGD without momentum, as Keras' default), and SGD with Nesterov momentum 0.9.
TABLE_V_OPTIMIZERS = ("adam", "rmsprop", "sgd")
OPTIMIZERS = TABLE_V_OPTIMIZERS + ("nesterov",)
# inverse_time: the paper's decay; plateau: halve when val accuracy stalls; cosine: linear
# warm-up over warmup_epochs, then cosine decay to 0 at the last epoch.
LR_SCHEDULES = ("inverse_time", "plateau", "cosine")
# The hyperparameters the Tuner searches (models/tuning.py); its best values win.
TUNED_FIELDS = ("optimizer", "learning_rate", "batch_size")
# The fer-pipeline commands that may offer a knob's flag (pipeline/options.py's runner names).
BOTH_RUNNERS = ("local", "kubeflow")


def knob(default: Any, help: str, *, runtime: bool = False, recipe: bool = True, parse=None,
         choices: Optional[Tuple] = None, metavar: Optional[str] = None, runners: Tuple[str, ...] = BOTH_RUNNERS):
    """A TrainConfig field that users set.

    help: the flag's help text (its default is appended from here and the catalogue's recipes).
    runtime: an orchestrator may set it per run without recompiling (FerTrainer's execution
      parameter; the Kubeflow compiler makes it a pipeline runtime parameter). int, float or str.
    recipe: a model's catalogue recipe may set it, so a run that does not give it says None
      ("not given") rather than this default.
    parse: the argparse type when the field's own type is not enough (core/arg_types.py).
    runners: the commands that offer its flag ("local": fer-pipeline run, "kubeflow":
      kubeflow compile); empty: set by code only.
    """
    return dataclasses.field(default=default, metadata={
        "knob": True, "help": help, "runtime": runtime, "recipe": recipe, "parse": parse, "choices": choices,
        "metavar": metavar, "runners": runners})


def _model_name(name: str) -> str:
    """A model the catalogue lists (read when parsing: tests register their own), or one it
    names as not servable (the pipeline then refuses it with a pointer to bench/)."""
    if name not in catalog.ENTRIES and name not in catalog.NOT_SERVABLE:
        raise argparse.ArgumentTypeError(f"unknown model {name!r}; choose one of: {', '.join(sorted(catalog.ENTRIES))}")
    return name


_FRACTION_BELOW_1 = arg_types.ranged(float, 0.0, 0.99, "a fraction below 1")


@dataclasses.dataclass
class TrainConfig:
    # The knobs, in the order of their flags in --help.
    model: str = knob(catalog.DEFAULT_MODEL, "model to train: " + "; ".join(
        f"{name} ({entry.description})" for name, entry in catalog.ENTRIES.items()), recipe=False, metavar="NAME",
        parse=_model_name)
    epochs: int = knob(100, "most epochs; early stopping ends sooner", runtime=True, parse=arg_types.positive_int)
    batch_size: int = knob(128, "training batch size", runtime=True, parse=arg_types.positive_int)
    learning_rate: float = knob(1e-4, "initial learning rate", runtime=True, parse=arg_types.positive_float)
    optimizer: str = knob("adam", "optimizer", choices=OPTIMIZERS)
    lr_schedule: str = knob("inverse_time", "learning-rate schedule: the paper's inverse-time decay, halving on "
                                            "plateaus, or warm-up then cosine decay to 0 at the last epoch",
                            choices=LR_SCHEDULES)
    warmup_epochs: int = knob(0, "cosine schedule: epochs of linear warm-up", parse=arg_types.non_negative_int)
    patience: int = knob(4, "early-stopping patience in epochs (validation accuracy)",
                         parse=arg_types.non_negative_int)
    label_smoothing: float = knob(0.0, "label smoothing of the training loss", parse=_FRACTION_BELOW_1)
    mixup: float = knob(0.0, "mixup's Beta(alpha, alpha) for training batches; 0: off",
                        parse=arg_types.non_negative_float)
    random_erasing: float = knob(0.0, "probability that a training image gets an erased rectangle",
                                 parse=_FRACTION_BELOW_1)
    distill_alpha: float = knob(0.5, "with --teacher: the teacher's share of the training targets (the labels' is "
                                     "the rest)", parse=arg_types.fraction)
    distill_temperature: float = knob(1.0, "with --teacher: its probabilities softened as p**(1/T)",
                                      parse=arg_types.positive_float)
    augment: bool = knob(False, "random flip/rotation/shift of training images")
    tta: bool = knob(False, "serving averages each face and its mirror image")
    precision: str = knob("float32", "training precision: mixed_bfloat16 computes in bf16 (float32 weights; "
                                     "the export is float32), faster on CPUs with bf16 units", choices=PRECISIONS)
    resume: bool = knob(False, "continue training from the checkpoint directory's last epoch, with the recipe "
                               "it records (--epochs, except under the cosine schedule, --patience and --tta "
                               "may change)", recipe=False,
                        runners=("local",))
    # The Trainer's model_run dir when None; the local runner gives OUTPUT/checkpoints/<model>.
    checkpoint_dir: Optional[str] = knob(None, "training checkpoints (default: OUTPUT/checkpoints/<model>)",
                                         recipe=False, runners=())
    # Set by the pipeline or by code, not knobs of their own.
    decay: float = 1e-6  # inverse_time only
    use_class_weights: bool = False  # PipelineOptions.enable_class_weights (--class-weights)
    shuffle_buffer: int = 8192
    seed: int = 42
    class_weights: Optional[Dict[int, float]] = None  # balanced weights, handed over by the FerTrainer executor
    # The teacher's SavedModels (models/distillation.py), handed over by the FerTrainer executor
    # from its `teacher` input.
    teacher_dirs: Optional[List[str]] = None
    # The fields the Tuner's best hyperparameters set (with_hyperparameters): a resume that
    # another tuning changed names them so.
    tuned_fields: Tuple[str, ...] = ()

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        for name in ("random_erasing", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)!r}: must be in [0, 1)")
        if not 0.0 <= self.distill_alpha <= 1.0 or self.distill_temperature <= 0:
            raise ValueError(f"distill_alpha {self.distill_alpha!r} must be in [0, 1] and distill_temperature "
                             f"{self.distill_temperature!r} above 0")
        if self.mixup < 0 or self.warmup_epochs < 0:
            raise ValueError(f"mixup {self.mixup!r} and warmup_epochs {self.warmup_epochs!r} must be >= 0")

    @property
    def soft_labels(self) -> bool:
        """Label smoothing, mixup and a teacher train on one-hot (soft) labels; the rest on class ids."""
        return self.label_smoothing > 0 or self.mixup > 0 or bool(self.teacher_dirs)

    @classmethod
    def from_dict(cls, values: Optional[Dict]) -> "TrainConfig":
        """The run's values (None = not given) over the model's train_defaults over the
        paper's defaults."""
        values = {k: v for k, v in dict(values or {}).items() if v is not None}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        model_defaults = catalog.train_defaults(values.get("model", cls.model))
        return cls(**{**model_defaults, **values})

    def with_hyperparameters(self, hyperparameters: Optional[Dict]) -> "TrainConfig":
        """Applies a KerasTuner HyperParameters config (the Tuner's best_hyperparameters)."""
        if not hyperparameters:
            return self
        values = hyperparameters.get("values", hyperparameters)
        tuned = {k: type(getattr(self, k))(values[k]) for k in TUNED_FIELDS if k in values}
        return dataclasses.replace(self, **tuned, tuned_fields=tuple(tuned))


def knobs() -> Dict[str, dataclasses.Field]:
    """The knobs (fields made with knob()) by name, in declaration order."""
    return {f.name: f for f in dataclasses.fields(TrainConfig) if f.metadata.get("knob")}


def knob_types() -> Dict[str, Any]:
    """Each knob's type (resolved: this module's annotations are strings)."""
    hints = typing.get_type_hints(TrainConfig)
    return {name: hints[name] for name in knobs()}


# The knobs an orchestrator may set per run without recompiling: FerTrainer's execution
# parameters, which KFP binds to pipeline runtime parameters (name -> type).
def _runtime_knobs() -> Dict[str, type]:
    found = {name: ptype for name, ptype in knob_types().items() if knobs()[name].metadata["runtime"]}
    for name, ptype in found.items():
        if ptype not in (int, float, str):  # what a TFX execution parameter and a KFP parameter can be
            raise TypeError(f"runtime knob {name}: its type must be int, float or str, not {ptype}")
    return found


RUNTIME_KNOBS = _runtime_knobs()


def field_default(name: str):
    """TrainConfig's own default for a field (before any model's recipe)."""
    return TrainConfig.__dataclass_fields__[name].default
