"""Model registry: `--model NAME` picks the model (models/catalog.py) and this builds it.

Every Keras model takes the transformed `image` input (float32 [48, 48, 1] in [0, 1]) and
returns 7 softmax probabilities in FER label order, so training, export and serving do not
depend on which one is chosen.

The decision tree of Table I is listed in the catalogue too, but it is a scikit-learn model:
it cannot be exported for TF Serving, so the pipeline refuses it with a pointer to its
benchmark.
"""

import keras

from models import catalog

MODELS = catalog.ENTRIES  # the one catalogue (a test may add its own model to it)
DEFAULT_MODEL = catalog.DEFAULT_MODEL
NOT_SERVABLE = catalog.NOT_SERVABLE


def spec(name: str) -> catalog.ModelEntry:
    """The catalogue entry; ValueError naming the choices for an unknown or unservable model."""
    return catalog.entry(name)


def build(name: str) -> keras.Model:
    return spec(name).build()
