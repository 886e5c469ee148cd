"""Training: plain functions (dataset, optimizer, resumable early stopping, fit) and the
thin TFX adapter `run_fn` (the Trainer is given its import path, models.trainer.run_fn).

Paper settings (defaults): Adam lr 1e-4 with Keras' legacy `decay=1e-6`, i.e. inverse-time
decay per step lr_t = 1e-4 / (1 + 1e-6 t); batch 128; up to 100 epochs; early stopping
with patience 4 on validation accuracy, best weights restored. Labels are sparse class ids
with sparse categorical cross-entropy, which equals the paper's one-hot categorical
cross-entropy.

A model's registry entry may bring its own recipe (models/registry.py train_defaults):
augmentation in the input pipeline, a reduce-on-plateau schedule, flip test-time
augmentation in the exported signatures. The Tuner's best hyperparameters (optimizer,
learning rate, batch size) override both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import keras
import tensorflow as tf
from absl import logging

from models import augmentation, export, features, names, progress, registry
from models.train_config import OPTIMIZERS, PRECISIONS, TrainConfig  # noqa: F401  (trainer.TrainConfig)

TRAINING_SUMMARY_FILE = names.TRAINING_SUMMARY_FILE
CHECKPOINT_STATE_FILE = "state.json"
LAST_MODEL_FILE = "last.keras"
BEST_WEIGHTS_FILE = "best.weights.h5"

def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.lr_schedule == "inverse_time":
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            config.learning_rate, decay_steps=1, decay_rate=config.decay
        )
    else:  # "plateau": a plain variable that ReduceLROnPlateau lowers (schedule_callbacks)
        learning_rate = config.learning_rate
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    return optimizer[config.optimizer](learning_rate=learning_rate)


def schedule_callbacks(config: TrainConfig) -> list:
    if config.lr_schedule != "plateau":
        return []
    # Halves the rate after 2 epochs without a better val accuracy: early stopping (patience
    # >= 4) then gets at least one lowered rate to try before it gives up.
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5, patience=2,
                                              min_lr=1e-6, verbose=1)]


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=2, name=names.TOP2_ACCURACY),
        ],
    )
    return model


def make_dataset(file_pattern, data_accessor, tf_transform_output, batch_size: int, shuffle: bool, seed: int,
                 shuffle_buffer: int = 8192, augment: bool = False) -> tf.data.Dataset:
    """One pass over transformed examples as (image [B,48,48,1], label [B]) batches;
    `augment` randomly flips, rotates and shifts each training image."""
    from tfx_bsl.tfxio import dataset_options

    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=features.LABEL_KEY,
            num_epochs=1,
            shuffle=shuffle,
            shuffle_seed=seed,
            shuffle_buffer_size=shuffle_buffer,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    dataset = dataset.map(lambda x, y: (x[features.IMAGE_KEY], y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        dataset = dataset.map(lambda x, y: (augmentation.augment_images(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on val accuracy whose state lives on disk, so training continues
    across sittings: after each epoch it saves the full model (with optimizer state) and,
    on a new best, the best weights; `state.json` holds the epoch, best score, wait count
    and the per-epoch history. At the end the best weights are restored."""

    def __init__(self, directory: str, patience: int, monitor: str = "val_accuracy", epochs: int = 0):
        super().__init__()
        self.directory = directory
        self.patience = patience
        self.monitor = monitor
        self.epochs = epochs  # > 0: a progress line per epoch (models/progress.py)
        self.fit_started = time.time()
        self.state = {"epoch": 0, "best": None, "best_epoch": None, "wait": 0, "history": [], "stopped_early": False}

    @property
    def state_path(self):
        return os.path.join(self.directory, CHECKPOINT_STATE_FILE)

    def load(self) -> bool:
        if not tf.io.gfile.exists(self.state_path):
            return False
        with tf.io.gfile.GFile(self.state_path) as f:
            self.state = json.load(f)
        return True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        score = logs.get(self.monitor)
        if score is None:
            raise ValueError(f"early stopping needs {self.monitor!r}; got metrics {sorted(logs)}")
        state = self.state
        state["epoch"] = epoch + 1
        # Wall time per epoch (validation included) and when it ended: time-to-accuracy curves.
        state["history"].append({"epoch": epoch + 1, **logs, "seconds": round(time.time() - self._epoch_started, 2),
                                 "ended_at": round(time.time(), 1)})
        tf.io.gfile.makedirs(self.directory)
        if state["best"] is None or score > state["best"]:
            state.update(best=score, best_epoch=epoch + 1, wait=0)
            self.model.save_weights(os.path.join(self.directory, BEST_WEIGHTS_FILE))
        else:
            state["wait"] += 1
            if state["wait"] >= self.patience:
                state["stopped_early"] = True
                self.model.stop_training = True
        self.model.save(os.path.join(self.directory, LAST_MODEL_FILE))
        with tf.io.gfile.GFile(self.state_path, "w") as f:
            json.dump(state, f, indent=1)
        if self.epochs:
            print(progress.epoch_line(epoch + 1, self.epochs, logs, state["best"], state["best_epoch"],
                                      time.time() - self.fit_started, [h["seconds"] for h in state["history"]],
                                      self.patience - state["wait"]), flush=True)

    def restore_best(self, model: keras.Model) -> None:
        path = os.path.join(self.directory, BEST_WEIGHTS_FILE)
        if tf.io.gfile.exists(path):
            model.load_weights(path)


def as_float32(model: keras.Model, name: str) -> keras.Model:
    """The same weights in a model built under the float32 policy. A mixed-precision model
    keeps float32 weights but computes in bf16, which is slow on CPUs without bf16 units:
    what is exported and served is float32 everywhere."""
    keras.mixed_precision.set_global_policy("float32")
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    fresh = registry.build(name)
    fresh.set_weights(model.get_weights())
    return fresh


def train(config: TrainConfig, train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, log_dir: str,
          checkpoint_dir: str) -> tuple:
    """Builds (or resumes) and fits the model. Returns (model, summary dict); the model is
    float32 whatever the training precision."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    stopper = ResumableEarlyStopping(checkpoint_dir, config.patience, epochs=config.epochs)
    initial_epoch = 0
    if config.resume and stopper.load():
        model = keras.models.load_model(os.path.join(checkpoint_dir, LAST_MODEL_FILE))
        initial_epoch = stopper.state["epoch"]
        print(f"[Trainer] resuming {config.model} from epoch {initial_epoch} ({checkpoint_dir})", flush=True)
    else:
        model = compile_model(registry.build(config.model), config)
    class_weight = None
    if config.use_class_weights:
        if not config.class_weights:
            raise ValueError("use_class_weights is set but the Trainer was given no class weights (class-balance report)")
        # JSON (custom_config) turns the class ids into strings.
        class_weight = {int(k): float(v) for k, v in config.class_weights.items()}
        print(f"[Trainer] balanced class weights: {class_weight}", flush=True)

    started = stopper.fit_started = time.time()
    if stopper.state["stopped_early"] or initial_epoch >= config.epochs:
        print("[Trainer] the checkpointed run had already finished; restoring its best weights", flush=True)
    else:
        print(f"[Trainer] {config.model}: up to {config.epochs} epochs; TensorBoard: tensorboard --logdir {log_dir}",
              flush=True)
        model.fit(
            train_ds,
            validation_data=eval_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            class_weight=class_weight,
            callbacks=[*schedule_callbacks(config), stopper, keras.callbacks.TensorBoard(log_dir=log_dir)],
            verbose=1 if sys.stdout.isatty() else 0,  # the bar on a terminal; the stopper's line each epoch
        )
    elapsed = time.time() - started
    stopper.restore_best(model)
    model = as_float32(model, config.model)
    state = stopper.state
    summary = {
        "model": config.model,
        "config": dataclasses.asdict(config),
        "epochs_run": state["epoch"],
        "resumed_from_epoch": initial_epoch,
        "best_epoch": state["best_epoch"],
        "best_val_accuracy": state["best"],
        "stopped_early": state["stopped_early"],
        "history": state["history"],
        "fit_seconds": elapsed,
        "parameters": int(model.count_params()),
    }
    return model, summary


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: FnArgs -> trained, exported serving model."""
    import tensorflow_transform as tft

    config = TrainConfig.from_dict(fn_args.custom_config).with_hyperparameters(fn_args.hyperparameters)
    if fn_args.hyperparameters:
        print(f"[Trainer] the Tuner's best: optimizer {config.optimizer}, learning rate {config.learning_rate}, "
              f"batch size {config.batch_size}", flush=True)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    make = lambda files, training: make_dataset(  # noqa: E731
        files, fn_args.data_accessor, tf_transform_output, config.batch_size, shuffle=training, seed=config.seed,
        shuffle_buffer=config.shuffle_buffer, augment=training and config.augment,
    )
    checkpoint_dir = config.checkpoint_dir or os.path.join(fn_args.model_run_dir, "checkpoints")
    model, summary = train(
        config, make(fn_args.train_files, True), make(fn_args.eval_files, False), fn_args.model_run_dir, checkpoint_dir
    )
    export.export_serving_model(model, tf_transform_output, fn_args.serving_model_dir, tta=config.tta)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=1)
    logging.info("Trainer summary: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
