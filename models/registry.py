"""Model registry: `--model NAME` picks the builder. Every model takes the transformed
`image` input (float32 [48, 48, 1] in [0, 1]) and returns 7 softmax probabilities in FER
label order, so training, export and serving do not depend on which one is chosen."""

from typing import Callable, Dict

import keras

from models import proposed_cnn

MODELS: Dict[str, Callable[[], keras.Model]] = {
    proposed_cnn.NAME: proposed_cnn.build,
}
DEFAULT_MODEL = proposed_cnn.NAME


def build(name: str) -> keras.Model:
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None
    return builder()
