"""Hyperparameter search for the TFX Tuner (`fer-pipeline run --tune`): KerasTuner over
the space of the paper's Table V, optimizer {Adam, RMSprop, SGD} x learning rate x batch
size {32, 64, 96, 128}. `tuner_fn` is the Tuner's entry point (its import path,
models.tuning.tuner_fn); the Tuner writes the best trial's HyperParameters and the
Trainer's run_fn applies them (TrainConfig.with_hyperparameters).

Trials train the run's model (--model) with its recipe for a few epochs on the training
split and are scored on the `valid` split's accuracy (the validation carve of the Training
rows: the Tuner's eval_args name it, pipeline/pipeline.py), never on PublicTest.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import keras
import keras_tuner

from models import registry, trainer
from models.train_config import TABLE_V_OPTIMIZERS

BATCH_SIZES = (32, 64, 96, 128)
LEARNING_RATE_RANGE = (1e-5, 1e-2)  # log-uniform; the paper's 1e-4 sits inside
PROJECT_NAME = "fer_tuning"

# Keys of the Tuner's custom_config.
TRAIN_CONFIG_KEY = "train_config"
TRIALS_KEY = "max_trials"
EPOCHS_KEY = "epochs_per_trial"


def define_search_space(hp: keras_tuner.HyperParameters) -> None:
    hp.Choice("optimizer", list(TABLE_V_OPTIMIZERS))
    hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log")
    hp.Choice("batch_size", list(BATCH_SIZES))


def trial_config(base: trainer.TrainConfig, hp: keras_tuner.HyperParameters) -> trainer.TrainConfig:
    # make_tuner registers the whole space up front, so every trial's hp holds all values
    return base.with_hyperparameters({"values": hp.values})


class FerHyperModel(keras_tuner.HyperModel):
    """Builds the registry model with a trial's optimizer and learning rate; fits it on
    datasets made for the trial's batch size (a tf.data batch size cannot change later)."""

    def __init__(self, base: trainer.TrainConfig, make_datasets: Callable[[int], tuple]):
        super().__init__(name=f"{base.model}_hypermodel")
        self.base = base
        self.make_datasets = make_datasets

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        config = trial_config(self.base, hp)
        return trainer.compile_model(registry.build(config.model), config)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        config = trial_config(self.base, hp)
        train_ds, eval_ds = self.make_datasets(config.batch_size)
        kwargs.setdefault("verbose", 2)
        return model.fit(trainer.prepare_batches(train_ds, config, training=True),
                         validation_data=trainer.prepare_batches(eval_ds, config, training=False), **kwargs)


def make_tuner(base: trainer.TrainConfig, make_datasets: Callable[[int], tuple], directory: str,
               max_trials: int) -> keras_tuner.RandomSearch:
    hp = keras_tuner.HyperParameters()
    define_search_space(hp)
    return keras_tuner.RandomSearch(
        FerHyperModel(base, make_datasets),
        objective=keras_tuner.Objective("val_accuracy", direction="max"),
        hyperparameters=hp,
        max_trials=max_trials,
        seed=base.seed,
        directory=directory,
        project_name=PROJECT_NAME,
        overwrite=True,
    )


# The Trainer's values that trials leave out: trials train with the run's recipe but never
# with the Trainer's checkpoints, and the Tuner has no class-balance input to weigh classes by.
# Trials run their own epochs without early stopping or export, so the run's epochs, patience
# and tta are left out too: a resume that extends the run keeps the Tuner's cached result.
TRAINER_ONLY = ("checkpoint_dir", "resume", "use_class_weights", "epochs", "patience", "tta")


def tuner_config(train_config: Dict[str, Any], max_trials: int, epochs_per_trial: int) -> Dict[str, Any]:
    """The Tuner component's custom_config, from the Trainer's TrainConfig values."""
    if max_trials < 1 or epochs_per_trial < 1:
        raise ValueError(f"tuning needs at least 1 trial of 1 epoch; got {max_trials} trials of {epochs_per_trial}")
    trial = {k: v for k, v in train_config.items() if k not in TRAINER_ONLY}
    return {TRAIN_CONFIG_KEY: trial, TRIALS_KEY: int(max_trials), EPOCHS_KEY: int(epochs_per_trial)}


def tuner_fn(fn_args):
    """TFX Tuner entry point: FnArgs -> TunerFnResult(tuner, fit_kwargs)."""
    import tensorflow_transform as tft
    from tfx.components.tuner.component import TunerFnResult

    custom = dict(fn_args.custom_config or {})
    base = trainer.TrainConfig.from_dict(custom.get(TRAIN_CONFIG_KEY))
    keras.utils.set_random_seed(base.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def make_datasets(batch_size: int) -> tuple:
        make = lambda files, training: trainer.make_dataset(  # noqa: E731
            files, fn_args.data_accessor, tf_transform_output, batch_size, shuffle=training, seed=base.seed,
            shuffle_buffer=base.shuffle_buffer)
        return make(fn_args.train_files, True), make(fn_args.eval_files, False)

    tuner = make_tuner(base, make_datasets, fn_args.working_dir, custom[TRIALS_KEY])
    return TunerFnResult(tuner=tuner, fit_kwargs={"epochs": custom[EPOCHS_KEY]})
