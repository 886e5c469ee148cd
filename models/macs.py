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


# --- The cost of a served face: every forward pass a serving signature makes ---

MODEL_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")  # one per counted layer above


def signature_op_counts(export_dir: str, signature: str = "serving_default") -> dict:
    """How many times each of MODEL_OPS runs for one call of `signature` in the SavedModel at
    `export_dir`: the signature's graph with every function it calls expanded (a function
    called twice counts twice). Read from saved_model.pb alone, without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(f"{export_dir}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    meta_graph = saved_model.meta_graphs[0]
    if signature not in meta_graph.signature_def:
        raise ValueError(f"{export_dir} has no signature {signature!r}; it has {sorted(meta_graph.signature_def)}")
    library = {fn.signature.name: fn for fn in meta_graph.graph_def.library.function}
    memo = {}

    def calls(node):
        return [value.func.name for value in node.attr.values() if value.HasField("func")] + \
               [f.name for value in node.attr.values() for f in value.list.func]

    def count(nodes, stack=()):
        totals = dict.fromkeys(MODEL_OPS, 0)
        for node in nodes:
            if node.op in totals:
                totals[node.op] += 1
            for name in calls(node) + ([node.op] if node.op in library else []):
                if name in stack or name not in library:
                    continue
                if name not in memo:
                    memo[name] = count(library[name].node_def, stack + (name,))
                for op, n in memo[name].items():
                    totals[op] += n
        return totals

    # The signature's outputs name nodes of the meta graph; count what those nodes call.
    outputs = {tensor.name.split(":")[0] for tensor in meta_graph.signature_def[signature].outputs.values()}
    return count([node for node in meta_graph.graph_def.node if node.name in outputs])


def forward_passes(export_dir: str, model: keras.Model, signature: str = "serving_default") -> int:
    """How many times `signature` runs `model` per face: its convolutions and matrix
    products in the exported graph over the model's own (flip TTA: 2)."""
    in_model = dict.fromkeys(MODEL_OPS, 0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):
            in_model["DepthwiseConv2dNative"] += 1
            in_model["Conv2D"] += 1
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            in_model["DepthwiseConv2dNative"] += 1
        elif isinstance(layer, keras.layers.Conv2D):
            in_model["Conv2D"] += 1
        elif isinstance(layer, keras.layers.Dense):
            in_model["MatMul"] += 1
    in_graph = signature_op_counts(export_dir, signature)
    ratios = {in_graph[op] / in_model[op] for op in MODEL_OPS if in_model[op]}
    if len(ratios) != 1 or not next(iter(ratios)).is_integer():
        raise ValueError(f"{export_dir} {signature}: ops {in_graph} are not a whole number of passes of {in_model}")
    return int(ratios.pop())


def serving_macs(export_dir: str, model: keras.Model, signature: str = "serving_default") -> int:
    """Multiply-adds per face of a served model: one pass's count times the passes the
    signature makes (test-time augmentation included)."""
    return count_macs(model) * forward_passes(export_dir, model, signature)


def main(argv=None) -> int:
    """`python -m models.macs SAVED_MODEL_DIR --model NAME`: the served cost per face, as JSON."""
    import argparse
    import json

    from models import registry

    parser = argparse.ArgumentParser(description="multiply-adds per face of a served model, TTA passes included")
    parser.add_argument("saved_model", help="a SavedModel version directory (e.g. models/pretrained/NAME/VERSION)")
    parser.add_argument("--model", required=True, help="the registry model it was trained as")
    parser.add_argument("--signature", default="serving_default")
    args = parser.parse_args(argv)
    model = registry.build(args.model)
    passes = forward_passes(args.saved_model, model, args.signature)
    paper = count_macs(registry.build("proposed_cnn"))
    per_face = count_macs(model) * passes
    print(json.dumps({"saved_model": args.saved_model, "model": args.model, "signature": args.signature,
                      "macs_per_pass": count_macs(model), "forward_passes": passes, "macs_per_face": per_face,
                      "proposed_cnn_macs_per_face": paper, "share_of_proposed_cnn": round(per_face / paper, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
