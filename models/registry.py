"""Model registry: `--model NAME` picks the model and its training recipe.

Every Keras model takes the transformed `image` input (float32 [48, 48, 1] in [0, 1]) and
returns 7 softmax probabilities in FER label order, so training, export and serving do not
depend on which one is chosen. A model's `train_defaults` are the models.trainer.TrainConfig
values it trains with unless the run says otherwise (the paper's models share the paper's
recipe; vgg_bn brings its own).

The decision tree of Table I is listed too, but it is a scikit-learn model: it cannot be
exported for TF Serving, so the pipeline refuses it with a pointer to its benchmark.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping

import keras

from models import compact_resnet, feedforward, proposed_cnn, simple_cnn, vgg_bn


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], keras.Model]
    description: str
    train_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


MODELS: Dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(proposed_cnn.NAME, proposed_cnn.build, "the paper's CNN (Table IV), the default"),
        ModelSpec(simple_cnn.NAME, simple_cnn.build, "the paper's simple CNN (Table III)"),
        ModelSpec(feedforward.NAME, feedforward.build, "the paper's feedforward network (Table II)"),
        ModelSpec(
            vgg_bn.NAME, vgg_bn.build,
            "VGG-style CNN with batch norm, augmentation, LR schedule and flip test-time augmentation",
            train_defaults={"learning_rate": 1e-3, "lr_schedule": "plateau", "augment": True, "tta": True,
                            "patience": 8},
        ),
        ModelSpec(
            compact_resnet.NAME, compact_resnet.build,
            "the efficient model: a compact residual CNN at 1/11 of the paper CNN's multiply-adds; shipped",
            train_defaults=compact_resnet.TRAIN_DEFAULTS,
        ),
    )
}
DEFAULT_MODEL = proposed_cnn.NAME

# Models of the paper that are not Keras models: name -> why the pipeline cannot train them.
NOT_SERVABLE = {
    "decision_tree": "the decision tree (Table I) is a scikit-learn model and cannot be served by TF Serving; "
                     "run it from bench/: python bench/paper_tables.py table1 --models decision_tree",
}


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        if name in NOT_SERVABLE:
            raise ValueError(NOT_SERVABLE[name]) from None
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None


def build(name: str) -> keras.Model:
    return spec(name).build()
