"""Defaults for the pipeline (the TFX template's configs module)."""

import os

from core import features

PIPELINE_NAME = "fer"
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
TUNER_FN = "models.tuning.tuner_fn"
# --tune: trials of the random search and epochs each trial trains (2 cores: keep it small).
DEFAULT_TUNING_TRIALS = 4
DEFAULT_TUNING_EPOCHS_PER_TRIAL = 2

# Blessing: the paper's CNN reaches ~0.6 on FER-2013; the demo uses a lower bound (its data
# and training budget are small), set by --accuracy-threshold.
DEFAULT_ACCURACY_LOWER_BOUND = 0.5


def serving_model_dir(output_dir: str) -> str:
    """TF Serving layout: <output>/serving_model/fer/<version>/."""
    return os.path.join(output_dir, "serving_model", features.SERVING_MODEL_NAME)


def pipeline_root(output_dir: str) -> str:
    return os.path.join(output_dir, "pipeline_root")


def metadata_path(output_dir: str) -> str:
    return os.path.join(output_dir, "metadata.sqlite")


def checkpoint_dir(output_dir: str, model_name: str) -> str:
    return os.path.join(output_dir, "checkpoints", model_name)
