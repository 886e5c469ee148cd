"""vgg_bn: the stronger model, a VGG-style network with batch normalisation, sized for
what 2 CPU cores can train.

Four blocks of two 3x3 convolutions (32, 64, 128, 256 filters, 'same' padding), each
convolution followed by batch norm and ReLU, each block by a 2x2 max pool and dropout
(48 -> 24 -> 12 -> 6 -> 3); then Flatten . Dense 256 . BN . ReLU . Dropout 0.5 . Dense 7.

Why this shape: the single networks that reach 72-73 % on FER-2013 are VGG-like stacks
of 3x3 convolutions with batch norm, trained with augmentation and a learning-rate
schedule, and tested with several crops/flips. This one keeps that recipe at about a third
of the proposed CNN's multiply-adds per image (~0.12 G vs ~0.35 G) so that it trains in the
same wall-clock budget here; its training recipe (augmentation in the input pipeline,
Adam 1e-3 with reduce-on-plateau, flip test-time augmentation in the serving signature)
is its registry entry's train_defaults (models/registry.py).
"""

import keras

from core import features

NAME = "vgg_bn"
BLOCK_FILTERS = (32, 64, 128, 256)
DENSE_UNITS = 256
L2 = 1e-4


def _conv_bn_relu(x, filters):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                            kernel_regularizer=keras.regularizers.L2(L2))(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def build(num_classes: int = features.NUM_CLASSES) -> keras.Model:
    inputs = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = inputs
    for i, filters in enumerate(BLOCK_FILTERS):
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
        x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Dropout(0.1 + 0.1 * i)(x)  # 0.1 .. 0.4: more where features are fewer and richer
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(DENSE_UNITS, use_bias=False, kernel_regularizer=keras.regularizers.L2(L2))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=NAME)
