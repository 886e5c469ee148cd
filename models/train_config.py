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
# Table V's three (SGD without momentum, as Keras' default), and SGD with Nesterov momentum 0.9.
TABLE_V_OPTIMIZERS = ("adam", "rmsprop", "sgd")
OPTIMIZERS = TABLE_V_OPTIMIZERS + ("nesterov",)
# inverse_time: the paper's decay; plateau: halve when val accuracy stalls; cosine: linear
# warm-up over warmup_epochs, then cosine decay to 0 at the last epoch.
LR_SCHEDULES = ("inverse_time", "plateau", "cosine")
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
    lr_schedule: str = "inverse_time"  # LR_SCHEDULES
    warmup_epochs: int = 0  # cosine only
    patience: int = 4
    augment: bool = False  # random flip/rotation/shift of training batches (models/augmentation.py)
    random_erasing: float = 0.0  # probability that a training image gets an erased rectangle
    mixup: float = 0.0  # mixup's Beta(alpha, alpha); 0: off
    label_smoothing: float = 0.0
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
        for name in ("random_erasing", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)!r}: must be in [0, 1)")
        if self.mixup < 0 or self.warmup_epochs < 0:
            raise ValueError(f"mixup {self.mixup!r} and warmup_epochs {self.warmup_epochs!r} must be >= 0")

    @property
    def soft_labels(self) -> bool:
        """Label smoothing and mixup train on one-hot (soft) labels; the rest on class ids."""
        return self.label_smoothing > 0 or self.mixup > 0

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
