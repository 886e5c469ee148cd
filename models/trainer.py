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
import math
import os
import sys
import time
from typing import Optional, Sequence

import keras
import tensorflow as tf
from absl import logging

from core import features, names, progress
from models import augmentation, distillation, export, registry, train_config, warm_start
from models.train_config import TrainConfig

TRAINING_SUMMARY_FILE = names.TRAINING_SUMMARY_FILE
CHECKPOINT_STATE_FILE = "state.json"
# Checkpoint files carry their epoch; state.json names the current ones and is replaced
# last, atomically, so a kill at any moment leaves the previous checkpoint whole.
LAST_MODEL_PATTERN = "last-{epoch:04d}.keras"
BEST_WEIGHTS_PATTERN = "best-{epoch:04d}.weights.h5"
LEGACY_LAST_MODEL_FILE, LEGACY_BEST_WEIGHTS_FILE = "last.keras", "best.weights.h5"
NESTEROV_MOMENTUM = 0.9


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.lr_schedule == "inverse_time":
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            config.learning_rate, decay_steps=1, decay_rate=config.decay
        )
    else:  # a plain variable that ReduceLROnPlateau or the cosine callback sets (schedule_callbacks)
        learning_rate = config.learning_rate
    if config.optimizer == "nesterov":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=NESTEROV_MOMENTUM, nesterov=True)
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    return optimizer[config.optimizer](learning_rate=learning_rate)


def cosine_learning_rate(epoch: int, config: TrainConfig) -> float:
    """The rate of epoch `epoch` (from 0): linear warm-up to config.learning_rate over
    warmup_epochs, then cosine decay that reaches 0 after the last epoch. A function of the
    epoch alone, so a resumed run follows the same curve."""
    base, warmup = config.learning_rate, config.warmup_epochs
    if epoch < warmup:
        return base * (epoch + 1) / warmup
    progress = (epoch - warmup) / max(1, config.epochs - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters (wait, best, cooldown) survive a resume; the rate
    itself lives in the optimizer, which the checkpoint saves."""

    state_key = "plateau"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._restored = None

    def get_state(self) -> dict:
        return {"wait": int(self.wait), "best": float(self.best), "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state: dict) -> None:
        self._restored = dict(state)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the counters
        if self._restored:
            self.wait = self._restored["wait"]
            self.best = self._restored["best"]
            self.cooldown_counter = self._restored["cooldown_counter"]


def schedule_callbacks(config: TrainConfig) -> list:
    if config.lr_schedule == "plateau":
        # Halves the rate after 2 epochs without a better val accuracy: early stopping (patience
        # >= 4) then gets at least one lowered rate to try before it gives up.
        return [ResumablePlateau(monitor="val_accuracy", mode="max", factor=0.5, patience=2, min_lr=1e-6, verbose=1)]
    if config.lr_schedule == "cosine":
        return [keras.callbacks.LearningRateScheduler(lambda epoch, _: cosine_learning_rate(epoch, config))]
    return []


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    if config.soft_labels:  # one-hot labels from prepare_batches
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy"),
                   keras.metrics.TopKCategoricalAccuracy(k=2, name=names.TOP2_ACCURACY)]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                   keras.metrics.SparseTopKCategoricalAccuracy(k=2, name=names.TOP2_ACCURACY)]
    model.compile(optimizer=make_optimizer(config), loss=loss, metrics=metrics)
    return model


def make_dataset(file_pattern, data_accessor, tf_transform_output, batch_size: int, shuffle: bool, seed: int,
                 shuffle_buffer: int = 8192) -> tf.data.Dataset:
    """One pass over transformed examples as (image [B,48,48,1], label [B]) batches."""
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
    return dataset.map(lambda x, y: (x[features.IMAGE_KEY], y), num_parallel_calls=tf.data.AUTOTUNE)


def prepare_batches(dataset: tf.data.Dataset, config: TrainConfig, training: bool,
                    teacher: Sequence[distillation.Member] = ()) -> tf.data.Dataset:
    """(image, class id) batches -> what the compiled model trains on: the recipe's
    augmentation (training batches only) and one-hot labels where the loss needs them; with a
    `teacher`, training targets blend the labels with its probabilities on the same images."""
    def prepare(images, labels):
        labels = tf.reshape(labels, [-1])
        if config.soft_labels or teacher:
            labels = tf.one_hot(labels, features.NUM_CLASSES)
        if training and config.augment:
            images = augmentation.augment_images(images)
        if training and config.random_erasing > 0:
            images = augmentation.random_erasing(images, config.random_erasing)
        if training and config.mixup > 0:
            images, labels = augmentation.mixup(images, labels, config.mixup)
        if training and teacher:
            labels = distillation.blend_targets(
                labels, distillation.teacher_probabilities(teacher, images, config.distill_temperature),
                config.distill_alpha)
        return images, labels

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _write_atomically(path: str, write) -> None:
    """write(tmp_path), then a rename over `path`: a reader never sees a half-written file."""
    directory, name = os.path.split(path)
    stem, dot, ext = name.partition(".")
    tmp = os.path.join(directory, f"{stem}.tmp-{os.getpid()}{dot}{ext}")  # Keras wants its suffix
    write(tmp)
    tf.io.gfile.rename(tmp, path, overwrite=True)


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on val accuracy whose state lives on disk, so training continues
    across sittings and kills. After each epoch it saves the full model (optimizer state
    included) and, on a new best, the best weights, each under its epoch's name; then
    `state.json` (epoch, best score, wait count, the files, the training seconds of every
    piece, the per-epoch history and the `stateful` callbacks' counters) is replaced
    atomically. A kill at any point leaves the last complete checkpoint. At the end the
    best weights are restored."""

    def __init__(self, directory: str, patience: int, monitor: str = "val_accuracy", epochs: int = 0,
                 stateful: Sequence = ()):
        super().__init__()
        self.directory = directory
        self.patience = patience
        self.monitor = monitor
        self.epochs = epochs  # > 0: a progress line per epoch (core/progress.py)
        self.stateful = list(stateful)  # callbacks with state_key, get_state() and set_state()
        self.fit_started = time.time()
        self.state = {"epoch": 0, "best": None, "best_epoch": None, "wait": 0, "history": [], "stopped_early": False,
                      "last_model": None, "best_weights": None, "pieces": 0, "callbacks": {}}

    @property
    def state_path(self):
        return os.path.join(self.directory, CHECKPOINT_STATE_FILE)

    def path(self, key: str) -> Optional[str]:
        """The checkpoint file the state names ('last_model' or 'best_weights'), or None."""
        name = self.state.get(key)
        return os.path.join(self.directory, name) if name else None

    def load(self) -> bool:
        if not tf.io.gfile.exists(self.state_path):
            return False
        with tf.io.gfile.GFile(self.state_path) as f:
            saved = json.load(f)
        # A checkpoint from before the files carried their epoch: its two fixed names.
        for key, legacy in (("last_model", LEGACY_LAST_MODEL_FILE), ("best_weights", LEGACY_BEST_WEIGHTS_FILE)):
            if not saved.get(key) and tf.io.gfile.exists(os.path.join(self.directory, legacy)):
                saved[key] = legacy
        self.state.update(saved)
        for callback in self.stateful:
            if callback.state_key in self.state["callbacks"]:
                callback.set_state(self.state["callbacks"][callback.state_key])
        return True

    @property
    def trained_seconds(self) -> float:
        """Training time summed over every piece of the run (validation included)."""
        return sum(h["seconds"] for h in self.state["history"])

    def on_train_begin(self, logs=None):
        self.state["pieces"] = self.state.get("pieces", 0) + 1

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        score = logs.get(self.monitor)
        if score is None:
            raise ValueError(f"early stopping needs {self.monitor!r}; got metrics {sorted(logs)}")
        state = self.state
        previous = {key: self.path(key) for key in ("last_model", "best_weights")}
        state["epoch"] = epoch + 1
        # Wall time per epoch (validation included) and when it ended: time-to-accuracy curves.
        state["history"].append({"epoch": epoch + 1, **logs, "seconds": round(time.time() - self._epoch_started, 2),
                                 "ended_at": round(time.time(), 1)})
        tf.io.gfile.makedirs(self.directory)
        if state["best"] is None or score > state["best"]:
            state.update(best=score, best_epoch=epoch + 1, wait=0, best_weights=BEST_WEIGHTS_PATTERN.format(epoch=epoch + 1))
            _write_atomically(self.path("best_weights"), self.model.save_weights)
        else:
            state["wait"] += 1
            if state["wait"] >= self.patience:
                state["stopped_early"] = True
                self.model.stop_training = True
        state["last_model"] = LAST_MODEL_PATTERN.format(epoch=epoch + 1)
        _write_atomically(self.path("last_model"), self.model.save)
        state["callbacks"] = {callback.state_key: callback.get_state() for callback in self.stateful}

        def write_state(tmp):
            with tf.io.gfile.GFile(tmp, "w") as f:
                json.dump(state, f, indent=1)

        _write_atomically(self.state_path, write_state)  # the commit point
        for key, old in previous.items():
            if old and old != self.path(key) and tf.io.gfile.exists(old):
                tf.io.gfile.remove(old)
        if self.epochs:
            print(progress.epoch_line(epoch + 1, self.epochs, logs, state["best"], state["best_epoch"],
                                      time.time() - self.fit_started, [h["seconds"] for h in state["history"]],
                                      self.patience - state["wait"]), flush=True)

    def restore_best(self, model: keras.Model) -> None:
        path = self.path("best_weights")
        if path and tf.io.gfile.exists(path):
            model.load_weights(path)


def training_targets(config: TrainConfig, teacher: Sequence[distillation.Member] = ()) -> dict:
    """What the run's loss is computed against, as the checkpoint records it: one-hot or class
    ids, and the teacher (its members, alpha, T). The teacher's folders may move between pieces
    (a pipeline's artifact), so its members are recorded by architecture, TTA and a digest of
    their weights."""
    targets = {"soft_labels": bool(config.soft_labels or teacher)}
    if teacher:
        targets["teacher"] = {"models": [m.name for m in teacher],
                              "members": [distillation.member_record(m) for m in teacher],
                              "distill_alpha": config.distill_alpha, "distill_temperature": config.distill_temperature}
    return targets


def check_same_targets(state: dict, config: TrainConfig, checkpoint_dir: str) -> None:
    """A resumed run must train against what its checkpoint did (its compiled loss expects those
    labels): ValueError, one line, when the label format, --teacher or its settings changed. A
    checkpoint from before targets were recorded passes."""
    recorded = state.get("targets")
    if recorded is None:
        return
    if recorded["soft_labels"] != config.soft_labels:
        raise ValueError(f"--resume: the checkpoint in {checkpoint_dir} was trained on "
                         f"{'one-hot targets' if recorded['soft_labels'] else 'class ids'}; this run's settings "
                         "(label smoothing, mixup, --teacher) give the other: resume with the same settings, or "
                         "train afresh in another --output")
    teacher = recorded.get("teacher")
    if bool(teacher) != bool(config.teacher_dirs) or (teacher and (
            teacher["distill_alpha"], teacher["distill_temperature"]) != (config.distill_alpha,
                                                                          config.distill_temperature)):
        was = (f"with a teacher ({', '.join(teacher['models'])}, distill_alpha {teacher['distill_alpha']:g}, "
               f"distill_temperature {teacher['distill_temperature']:g})" if teacher else "without a teacher")
        raise ValueError(f"--resume: the checkpoint in {checkpoint_dir} was trained {was}; resume with the same "
                         "distillation settings, or train afresh in another --output")


def check_same_teacher(state: dict, teacher: Sequence[distillation.Member], checkpoint_dir: str) -> None:
    """The loaded teacher's members against the checkpoint's, in any order (the ensemble is
    their mean): ValueError, one line, when a resume swapped one (check_same_targets compares
    its settings before it loads). By architecture, TTA and weights; a checkpoint that recorded
    architectures only is compared by those."""
    recorded = (state.get("targets") or {}).get("teacher")
    if not recorded:
        return
    if "members" in recorded:
        records = [distillation.member_record(m) for m in teacher]
        key = lambda r: (r["name"], r["tta"], r["weights_sha256"])  # noqa: E731
        same = sorted(map(key, recorded["members"])) == sorted(map(key, records))
        def described(r):
            return f"{r['name']}{' with flip TTA' if r['tta'] else ''} ({r['weights_sha256'][:12]})"

        was, now = list(map(described, recorded["members"])), list(map(described, records))
    else:
        was, now = recorded["models"], [m.name for m in teacher]
        same = sorted(was) == sorted(now)
    if not same:
        raise ValueError(f"--resume: the checkpoint in {checkpoint_dir} was distilled from a teacher of "
                         f"{', '.join(was)}; this run's --teacher is {', '.join(now)}: resume with the same teacher, "
                         "or train afresh in another --output")


# TrainConfig fields a resumed run may change: how far it goes (epochs, except under the cosine
# schedule, whose curve it sets; patience), what is exported (tta), and where things are (the
# teacher's folders move between a pipeline's pieces; its models and settings are in
# `targets`). class_weights come from the data; tuned_fields only says where values came from.
RESUMABLE_CHANGES = ("epochs", "patience", "tta", "resume", "checkpoint_dir", "teacher_dirs", "class_weights",
                     "tuned_fields")
# Settings whose flag is not `--` + their name (pipeline/options.py: --class-weights sets
# PipelineOptions.enable_class_weights, which the Trainer gets as use_class_weights).
_FLAGS = {"use_class_weights": "class-weights"}
# Of those, the ones whose flag only turns them on (no --no-<flag>).
_ON_ONLY = ("use_class_weights",)


def training_recipe(config: TrainConfig) -> dict:
    """The settings that shape the weights a run trains, as the checkpoint records them."""
    recipe = {name: value for name, value in dataclasses.asdict(config).items() if name not in RESUMABLE_CHANGES}
    if config.lr_schedule == "cosine":  # the cosine curve ends at the last epoch
        recipe["epochs"] = config.epochs
    return recipe


def _setting(name: str, value, tuned: Sequence[str] = ()) -> str:
    """A setting as the command line gives it: `--mixup 0.2`, `--augment` / `--no-augment`; a
    setting with no flag by its name (`seed 42`)."""
    flag = _FLAGS.get(name, name.replace("_", "-"))
    if name not in train_config.knobs() and name not in _FLAGS:
        text = f"{name} {value!r}"
    elif isinstance(value, bool) and name in _ON_ONLY:
        text = f"--{flag}" if value else f"no --{flag}"
    elif isinstance(value, bool):
        text = f"--{'' if value else 'no-'}{flag}"
    else:
        text = f"--{flag} {value!r}"
    return text + (" (the Tuner's best)" if name in tuned else "")


def check_same_recipe(state: dict, config: TrainConfig, checkpoint_dir: str) -> None:
    """A resumed run goes on as the checkpoint's run would have: ValueError, one line naming
    each setting that differs (a run resumed with newer code whose catalogue recipe changed
    would otherwise train the rest on another recipe). epochs (but under the cosine schedule)
    and patience may change; planned_changes says so. A checkpoint from before the recipe was
    recorded passes."""
    recorded = state.get("recipe")
    if recorded is None:
        return
    now = training_recipe(config)
    names = [name for name in recorded if name in now and now[name] != recorded[name]]
    changed = [f"{_setting(name, recorded[name])} (this run: {_setting(name, now[name], config.tuned_fields)})"
               for name in names]
    if changed:
        # The Tuner's best values override flags: a tuning that chose others is left out.
        how = ("without --tune, giving the checkpoint's values as flags" if set(names) & set(config.tuned_fields)
               else "with the checkpoint's settings")
        raise ValueError(f"--resume: the checkpoint in {checkpoint_dir} was trained with {', '.join(changed)}; "
                         f"resume {how}, or train afresh in another --output")


def planned_changes(state: dict, config: TrainConfig) -> list:
    """What a resumed run changes of the checkpoint's plan (epochs, patience), as console lines."""
    planned = state.get("planned", {})
    return [f"[Trainer] --{name} {getattr(config, name)}: the checkpoint's run was planned with {planned[name]}"
            for name in ("epochs", "patience") if planned.get(name) not in (None, getattr(config, name))]


def cosine_cut_short(config: TrainConfig) -> Optional[str]:
    """A console line when early stopping can end a cosine schedule before its last epoch, with
    the rate still high (the valid accuracy of such a run climbs most as the rate decays)."""
    if config.lr_schedule != "cosine" or config.patience + 1 >= config.epochs:  # the first stop: epoch patience + 1
        return None
    return (f"[Trainer] note: --patience {config.patience} can stop this cosine schedule before its last epoch "
            f"({config.epochs}), while its learning rate is still high; --patience {config.epochs} trains it to "
            "the end")


def checkpoint_file(checkpoint_dir: str, key: str = "best_weights") -> Optional[str]:
    """The file a checkpoint directory's state names: 'best_weights' or 'last_model'."""
    stopper = ResumableEarlyStopping(checkpoint_dir, patience=0)
    return stopper.path(key) if stopper.load() else None


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
          checkpoint_dir: str, warm_start_model: Optional[keras.Model] = None,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple:
    """Builds (or resumes) and fits the model on (image, class id) batches; the recipe's
    augmentation and label format are applied here (prepare_batches). Returns (model,
    summary dict); the model is float32 whatever the training precision. With
    `warm_start_model` (models/warm_start.py) training starts from its weights, BatchNorm
    frozen, and its valid accuracy before the first step goes into the summary. `callbacks` run
    after the trainer's own each epoch (a benchmark's stop at a target accuracy: the epoch is
    checkpointed before they can stop the run)."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    schedules = schedule_callbacks(config)
    stopper = ResumableEarlyStopping(checkpoint_dir, config.patience, epochs=config.epochs,
                                     stateful=[c for c in schedules if hasattr(c, "state_key")])
    initial_epoch = 0
    warm_start_accuracy = None
    if config.resume and stopper.load() and stopper.path("last_model"):
        check_same_targets(stopper.state, config, checkpoint_dir)
        check_same_recipe(stopper.state, config, checkpoint_dir)
        model = keras.models.load_model(stopper.path("last_model"))
        initial_epoch = stopper.state["epoch"]
        print(f"[Trainer] resuming {config.model} from epoch {initial_epoch} "
              f"({progress.format_duration(stopper.trained_seconds)} trained in {stopper.state['pieces']} "
              f"piece(s) so far; {checkpoint_dir})", flush=True)
        for line in planned_changes(stopper.state, config):
            print(line, flush=True)
        if stopper.state["stopped_early"] and stopper.state["wait"] < config.patience and initial_epoch < config.epochs:
            stopper.state["stopped_early"] = False  # a longer patience than the one that stopped it
            print(f"[Trainer] the run had stopped early after {stopper.state['wait']} epoch(s) without a new best; "
                  f"with --patience {config.patience} it trains on", flush=True)
    elif warm_start_model is not None:
        frozen, trained = warm_start.freeze_batch_norm(warm_start_model)
        model = compile_model(warm_start_model, config)
        warm_start_accuracy = float(model.evaluate(prepare_batches(eval_ds, config, training=False), verbose=0,
                                                   return_dict=True)["accuracy"])
        print(f"[Trainer] fine-tuning {config.model} from the warm start: valid accuracy {warm_start_accuracy:.4f} "
              f"before training; {trained} layers train at learning rate {config.learning_rate:g}, {frozen} "
              f"BatchNorm layers frozen", flush=True)
    else:
        model = compile_model(registry.build(config.model), config)
    teacher, teacher_accuracy = (), None
    if config.teacher_dirs:
        teacher = distillation.load_teacher(config.teacher_dirs)
        if initial_epoch:
            check_same_teacher(stopper.state, teacher, checkpoint_dir)
        teacher_accuracy = distillation.ensemble_accuracy(teacher, eval_ds)
        print(f"[Trainer] distilling from a teacher of {len(teacher)} model(s) "
              f"({', '.join(m.name + (' with flip TTA' if m.tta else '') for m in teacher)}): valid accuracy "
              f"{teacher_accuracy:.4f}; training targets {1 - config.distill_alpha:g} x labels + "
              f"{config.distill_alpha:g} x teacher at temperature {config.distill_temperature:g}", flush=True)
    class_weight = None
    if config.use_class_weights:
        if not config.class_weights:
            raise ValueError("use_class_weights is set but the Trainer was given no class weights (class-balance report)")
        # JSON (custom_config) turns the class ids into strings.
        class_weight = {int(k): float(v) for k, v in config.class_weights.items()}
        print(f"[Trainer] balanced class weights: {class_weight}", flush=True)

    stopper.state["targets"] = training_targets(config, teacher)
    stopper.state["recipe"] = training_recipe(config)
    stopper.state["planned"] = {"epochs": config.epochs, "patience": config.patience}
    started = stopper.fit_started = time.time()
    if stopper.state["stopped_early"] or initial_epoch >= config.epochs:
        print("[Trainer] the checkpointed run had already finished; restoring its best weights", flush=True)
    else:
        print(f"[Trainer] {config.model}: up to {config.epochs} epochs; TensorBoard: tensorboard --logdir {log_dir}",
              flush=True)
        note = cosine_cut_short(config)
        if note:
            print(note, flush=True)
        model.fit(
            prepare_batches(train_ds, config, training=True, teacher=teacher),
            validation_data=prepare_batches(eval_ds, config, training=False),
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            class_weight=class_weight,
            callbacks=[*schedules, stopper, keras.callbacks.TensorBoard(log_dir=log_dir), *callbacks],
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
        "fit_seconds": elapsed,  # this piece
        "train_seconds_total": stopper.trained_seconds,  # every piece
        "pieces": state["pieces"],
        "parameters": int(model.count_params()),
    }
    if warm_start_accuracy is not None:
        summary["warm_start_val_accuracy"] = warm_start_accuracy
    if teacher:
        summary["teacher"] = [{"model": m.name, "tta": m.tta, "saved_model": m.saved_model} for m in teacher]
        summary["teacher_val_accuracy"] = teacher_accuracy
    if state["pieces"] > 1:
        print(f"[Trainer] {state['epoch']} epochs in {state['pieces']} pieces: "
              f"{progress.format_duration(stopper.trained_seconds)} of training in all", flush=True)
    return model, summary


def write_tflite_twin(model: keras.Model, config: TrainConfig, train_batches, valid_batches,
                      serving_model_dir: str) -> Optional[dict]:
    """The served model as int8 TFLite (calibrated on training faces) beside the SavedModel,
    for in-process use (fer-webcam), when it scores within tflite_export.TWIN_TOLERANCE of the
    model on the valid carve. Returns that check (None when there is no twin to check). A model
    the converter cannot take, or a twin that falls short, still ships its SavedModel: the
    reason is printed, nothing else changes."""
    from models import tflite_export

    path = os.path.join(serving_model_dir, tflite_export.TFLITE_FILE)
    try:
        flatbuffer = tflite_export.to_tflite(model, config.tta, "int8", tflite_export.first_faces(train_batches))
    except Exception as e:  # the converter's errors have no common type
        print(f"[Trainer] no TFLite twin of {config.model}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              flush=True)
        return None
    faces, labels = tflite_export.faces_and_labels(valid_batches)
    if not len(labels):
        print("[Trainer] no TFLite twin: no valid faces to check it on", flush=True)
        return None
    serve = tflite_export.serving_function(model, config.tta)
    check = tflite_export.check_twin(
        flatbuffer, lambda batch: serve(tf.constant(batch))[features.SERVING_PROBABILITIES_OUTPUT].numpy(),
        faces, labels, tflite_export.TWIN_TOLERANCE)
    words = (f"valid accuracy {check['twin_accuracy']:.4f} against the model's {check['model_accuracy']:.4f} "
             f"({check['faces']} faces; top-1 agreement {check['agreement']:.4f})")
    if not check["accepted"]:
        print(f"[Trainer] no TFLite twin: int8 scored {words}, more than "
              f"{100 * tflite_export.TWIN_TOLERANCE:g} points below; in-process use runs the SavedModel", flush=True)
        return check
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(flatbuffer)
    print(f"[Trainer] TFLite twin (int8): {words}", flush=True)
    return check


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: FnArgs -> trained, exported serving model."""
    import tensorflow_transform as tft

    warm_start_model = None
    if fn_args.base_model:  # TFX's base_model input: fine-tune (models/warm_start.py's recipe)
        given = dict(fn_args.custom_config or {})
        name, warm_start_model = warm_start.restore(fn_args.base_model, given.get("model"))
        if given.get("model") not in (None, name):
            print(f"[Trainer] the warm start's weights are a {name}'s: fine-tuning {name} ({given['model']}, the "
                  "--model setting, applies to training from scratch)", flush=True)
        fn_args.custom_config = {**warm_start.fine_tune_values(given), "model": name}
    config = TrainConfig.from_dict(fn_args.custom_config).with_hyperparameters(fn_args.hyperparameters)
    if fn_args.hyperparameters:
        print(f"[Trainer] the Tuner's best: optimizer {config.optimizer}, learning rate {config.learning_rate}, "
              f"batch size {config.batch_size}", flush=True)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    make = lambda files, training: make_dataset(  # noqa: E731
        files, fn_args.data_accessor, tf_transform_output, config.batch_size, shuffle=training, seed=config.seed,
        shuffle_buffer=config.shuffle_buffer,
    )
    checkpoint_dir = config.checkpoint_dir or os.path.join(fn_args.model_run_dir, "checkpoints")
    model, summary = train(
        config, make(fn_args.train_files, True), make(fn_args.eval_files, False), fn_args.model_run_dir, checkpoint_dir,
        warm_start_model,
    )
    export.export_serving_model(model, tf_transform_output, fn_args.serving_model_dir, tta=config.tta)
    summary["tflite_twin"] = write_tflite_twin(model, config, make(fn_args.train_files, False),
                                               make(fn_args.eval_files, False), fn_args.serving_model_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=1)
    logging.info("Trainer summary: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
