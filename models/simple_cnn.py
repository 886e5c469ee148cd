"""The paper's simple CNN (Saravanan et al., Table III), the step between the feedforward
network and the proposed CNN in Table I (24.72 %).

Conv32 . MaxPool . Conv64 . MaxPool . Flatten . Dense 128 (ReLU) . Dense 7 softmax; 3x3
kernels, 2x2 pools, ReLU after each convolution, 'valid' padding.

The table's exact widths were not available to this project; the shape above is what the
paper describes in words (a few convolution/pooling pairs and a small dense head, no
regularisation), and its widths are our choice, written down here and checked by the tests.
It trains with the paper's optimizer settings (Adam 1e-4, decay 1e-6, batch 128).
"""

import keras

from core import features

NAME = "simple_cnn"
DENSE_UNITS = 128


def build(num_classes: int = features.NUM_CLASSES) -> keras.Model:
    inputs = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(DENSE_UNITS, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=NAME)
