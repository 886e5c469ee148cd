"""The paper's proposed CNN (Saravanan et al., Table IV), in plain Keras 3.

Conv64 . Conv64 . MaxPool . Dropout .25 . Conv128 . Conv128 . Conv256 . Conv256 . MaxPool .
Dropout .25 . Flatten . Dense(ReLU, L2 0.001) . Dropout .5 . Dense 7 softmax; 3x3 kernels,
2x2 pools, ReLU after every convolution.

Choices the paper leaves open, written down here:
  * padding: 'valid' (the Keras default the paper's code would have used; 48 -> 7x7x256 at
    the flatten). 'same' is available (padding="same") and gives 12x12x256.
  * dense width: 1024 units.
  * L2 0.001 applies to the hidden dense layer's kernel only, as the table says.
  * no batch normalisation (Table IV has none).
With these choices the model has 13,997,511 parameters (tests/models check the arithmetic).
"""

import keras

from core import features

NAME = "proposed_cnn"
DENSE_UNITS = 1024
L2 = 0.001


def build(num_classes: int = features.NUM_CLASSES, dense_units: int = DENSE_UNITS, padding: str = "valid") -> keras.Model:
    conv = lambda filters: keras.layers.Conv2D(filters, 3, padding=padding, activation="relu")  # noqa: E731
    inputs = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = conv(64)(inputs)
    x = conv(64)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.25)(x)
    x = conv(128)(x)
    x = conv(128)(x)
    x = conv(256)(x)
    x = conv(256)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(dense_units, activation="relu", kernel_regularizer=keras.regularizers.L2(L2))(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=NAME)
