"""TrainConfig: what one training run does, TF-free (the CLI's help, pipeline/options.py and
the Kubeflow compiler read its defaults without loading Keras; models/trainer.py trains with
it).

Paper settings (defaults): Adam lr 1e-4 with Keras' legacy `decay=1e-6`; batch 128; up to
100 epochs; early stopping with patience 4 on validation accuracy. A model's catalogue entry
may bring its own recipe (models/catalog.py); the run's values override both, and the Tuner's
best hyperparameters override all.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

from models import catalog

PRECISIONS = ("float32", "mixed_bfloat16")  # keras dtype policies for training
OPTIMIZERS = ("adam", "rmsprop", "sgd")  # Table V's; SGD without momentum, as Keras' default
LR_SCHEDULES = ("inverse_time", "plateau")
# The hyperparameters the Tuner searches (models/tuning.py); its best values win.
TUNED_FIELDS = ("optimizer", "learning_rate", "batch_size")


@dataclasses.dataclass
class TrainConfig:
    model: str = catalog.DEFAULT_MODEL
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-4
    decay: float = 1e-6  # inverse_time only
    optimizer: str = "adam"
    lr_schedule: str = "inverse_time"  # the paper's decay; "plateau": halve lr when val accuracy stalls
    patience: int = 4
    augment: bool = False  # random flip/rotation/shift of training batches (models/augmentation.py)
    tta: bool = False  # serving signatures average the image and its mirror image
    precision: str = "float32"  # "mixed_bfloat16": bf16 compute, float32 weights; export is float32
    use_class_weights: bool = False
    shuffle_buffer: int = 8192
    seed: int = 42
    checkpoint_dir: Optional[str] = None  # defaults to the Trainer's model_run dir
    resume: bool = False  # continue from checkpoint_dir's last epoch
    class_weights: Optional[Dict[int, float]] = None  # balanced weights, handed over by the FerTrainer executor

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")

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
        return dataclasses.replace(self, **{k: type(getattr(self, k))(values[k]) for k in TUNED_FIELDS if k in values})


# The fields an orchestrator may set per run without recompiling: FerTrainer's execution
# parameters, which KFP binds to pipeline runtime parameters (name -> type).
RUNTIME_KNOBS = {"epochs": int, "batch_size": int, "learning_rate": float}


def field_default(name: str):
    """TrainConfig's own default for a field (before any model's recipe)."""
    return TrainConfig.__dataclass_fields__[name].default
