"""The paper's feedforward network (Saravanan et al., Table II; 17.38 % in Table I): the
input layer (the 2,304 pixels), one hidden layer, the output layer, dropout 0.2.

The hidden width is not given in the text available to this project: 512 units (ReLU) is
our choice, written down here. Dropout 0.2 follows the hidden layer.
"""

import keras

from core import features

NAME = "feedforward"
HIDDEN_UNITS = 512
DROPOUT = 0.2


def build(num_classes: int = features.NUM_CLASSES, hidden_units: int = HIDDEN_UNITS) -> keras.Model:
    inputs = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(hidden_units, activation="relu")(x)
    x = keras.layers.Dropout(DROPOUT)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=NAME)
