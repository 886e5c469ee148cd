"""compact_resnet: the efficient model, a compact residual CNN for real-time use on a CPU.

Stem: Conv 3x3 (32) . BN . ReLU at 48x48, MaxPool 2; then three residual down-sampling
modules at 24 -> 12 -> 6 -> 3 with 32, 64 and 160 filters, each
  main:     Conv 3x3 . BN . ReLU . Conv 3x3 . BN . MaxPool 3x3 stride 2
  shortcut: Conv 1x1 stride 2 . BN
  added, then ReLU
(the module of mini-Xception, Arriaga et al. 2017, with full 3x3 convolutions in place of
depthwise-separable ones); then global average pooling . Dropout 0.4 . Dense 7 softmax.

Cost: 31,169,632 multiply-adds per image, 1/11.4 of the proposed CNN's 353,809,664
(models/macs.py counts both; tests/models check the figures and the 1/10 bound), and
414,215 parameters (1.7 MB as float32). Served with flip TTA a face costs two passes:
62.3 M, 1/5.7 of the proposed CNN's.

Why full convolutions: at the same multiply-adds, depthwise-separable modules trained
1.3-2x slower on this CPU (oneDNN's depthwise kernels are memory-bound; measured in
bench/results/efficient_model.md), and training time is what 2 cores are short of.
Its recipe (registry train_defaults, measured there too): Adam 1e-3 with reduce-on-plateau,
batch 64, augmentation in the input pipeline, flip test-time augmentation in the
serving signatures.
"""

import keras

from core import features

NAME = "compact_resnet"
STEM_FILTERS = 32
MODULE_FILTERS = (32, 64, 160)
DROPOUT = 0.4
L2 = 1e-4


def _conv(x, filters, kernel_size=3, strides=1):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                               kernel_regularizer=keras.regularizers.L2(L2))(x)


def _bn_relu(x):
    return keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))


def _module(x, filters):
    shortcut = keras.layers.BatchNormalization()(_conv(x, filters, 1, strides=2))
    x = _bn_relu(_conv(x, filters))
    x = keras.layers.BatchNormalization()(_conv(x, filters))
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return keras.layers.Activation("relu")(keras.layers.Add()([x, shortcut]))


def build(num_classes: int = features.NUM_CLASSES, stem_filters: int = STEM_FILTERS,
          module_filters=MODULE_FILTERS, name: str = NAME) -> keras.Model:
    """Version 1's widths by default; other widths make the wider variants (models/catalog.py),
    compact_resnet_v2 (the shipped model's network) among them."""
    inputs = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = _bn_relu(_conv(inputs, stem_filters))
    x = keras.layers.MaxPooling2D(2)(x)  # the 48x48 stage stays thin: the modules start at 24x24
    for filters in module_filters:
        x = _module(x, filters)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(DROPOUT)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
