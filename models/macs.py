"""Multiply-adds per image of a Keras model, counted layer by layer from its shapes.

Counted: Conv2D (k_h * k_w * C_in/groups * C_out per output position), DepthwiseConv2D
(k_h * k_w * C per output position), SeparableConv2D (its depthwise plus its pointwise
part) and Dense (inputs x units). Batch norm, activations, pooling, additions and biases
are left out, as in the usual MAC counts of MobileNet and Xception papers: they are a
small share and mostly memory-bound.
"""

import keras


def _spatial_positions(shape) -> int:
    n = 1
    for d in shape[1:-1]:
        n *= int(d)
    return n


def layer_macs(layer) -> int:
    if isinstance(layer, keras.layers.SeparableConv2D):
        c_in = int(layer.input.shape[-1])
        kh, kw = layer.kernel_size
        positions = _spatial_positions(layer.output.shape)
        depth = kh * kw * c_in * layer.depth_multiplier
        return positions * (depth + c_in * layer.depth_multiplier * layer.filters)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        c_in = int(layer.input.shape[-1])
        kh, kw = layer.kernel_size
        return _spatial_positions(layer.output.shape) * kh * kw * c_in * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        c_in = int(layer.input.shape[-1])
        kh, kw = layer.kernel_size
        return _spatial_positions(layer.output.shape) * kh * kw * (c_in // layer.groups) * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input.shape[-1]) * layer.units
    return 0


def count_macs(model: keras.Model) -> int:
    """Multiply-adds for one image through `model` (a functional Keras model)."""
    return sum(layer_macs(layer) for layer in model.layers)
