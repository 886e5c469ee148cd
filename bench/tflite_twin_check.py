"""A shipped (or pushed) model's int8 TFLite twin against its SavedModel, as the Trainer checks
a new twin before writing it (models/tflite_export.check_twin): accuracy of both and top-1
agreement, on the valid carve (the check) and on PublicTest (reported). One JSON line a split.

    .venv/bin/python bench/tflite_twin_check.py --data ../shared/data/fer2013/fer2013.csv.gz \
        [--model models/pretrained/compact_resnet_v2] [--usage valid PublicTest]
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None):
    from core import arg_types, features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=arg_types.input_file, help="a FER CSV (plain or .gz)")
    p.add_argument("--model", default=features.SHIPPED_MODEL_BASE_PATH,
                   help="a SavedModel version folder or a base path (its newest version; default: the shipped model)")
    p.add_argument("--usage", nargs="+", default=["valid", "PublicTest"], choices=("valid", "PublicTest", "PrivateTest"))
    args = p.parse_args(argv)

    import tensorflow as tf

    from client.analyze import resolve_saved_model
    from models import tflite_export
    from tools import evaluate

    try:
        version = resolve_saved_model(args.model)
    except FileNotFoundError as e:
        p.error(f"--model {e}")
    twin = os.path.join(version, tflite_export.TFLITE_FILE)
    if not os.path.exists(twin):
        p.error(f"--model {args.model}: no {tflite_export.TFLITE_FILE} beside the SavedModel in {version}")
    serve = tf.saved_model.load(version).signatures["serving_default"]

    def predict(batch):
        return serve(**{features.SERVING_IMAGE_INPUT: tf.constant(batch)})[features.SERVING_PROBABILITIES_OUTPUT].numpy()

    with open(twin, "rb") as f:
        flatbuffer = f.read()
    for usage in args.usage:
        labels, faces, _ = evaluate.read_usage(args.data, usage)
        if not len(labels):
            print(f"error: --usage {usage}: {args.data} has no such rows", file=sys.stderr)
            return 2
        check = tflite_export.check_twin(flatbuffer, predict, faces, labels)
        if usage == "valid":  # the split the Trainer's check gates on
            check["tolerance"] = tflite_export.TWIN_TOLERANCE
        else:  # reported only: no verdict
            check.pop("accepted")
        print(json.dumps({"model": version, "split": usage, **check,
                          "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
