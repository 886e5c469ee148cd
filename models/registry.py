"""Model registry: `--model NAME` picks the model (models/catalog.py) and this builds it.

Every Keras model takes the transformed `image` input (float32 [48, 48, 1] in [0, 1]) and
returns 7 softmax probabilities in FER label order, so training, export and serving do not
depend on which one is chosen.

The decision tree of Table I is listed in the catalogue too, but it is a scikit-learn model:
it cannot be exported for TF Serving, so the pipeline refuses it with a pointer to its
benchmark.
"""

import dataclasses
import functools
import importlib
from typing import Any, Callable, Dict, Mapping

import keras

from models import catalog


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], keras.Model]
    description: str
    train_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


MODELS: Dict[str, ModelSpec] = {
    entry.name: ModelSpec(entry.name, functools.partial(importlib.import_module(entry.module).build,
                                                        **entry.build_kwargs),
                          entry.description, entry.train_defaults)
    for entry in catalog.ENTRIES.values()
}
DEFAULT_MODEL = catalog.DEFAULT_MODEL
NOT_SERVABLE = catalog.NOT_SERVABLE


def spec(name: str) -> ModelSpec:
    if name in MODELS:
        return MODELS[name]
    catalog.entry(name)  # raises, naming the choices
    raise AssertionError(name)


def build(name: str) -> keras.Model:
    return spec(name).build()
