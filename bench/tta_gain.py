"""What flip test-time augmentation adds: one trained model's PublicTest accuracy on the
faces alone against the average of each face and its mirror image (what the exported
signatures of a `--tta` model compute).

    python bench/tta_gain.py --checkpoint runs/paper/checkpoints/stronger-vgg_bn --model vgg_bn \
        --data ../shared/data/fer2013/fer2013.csv.gz

Loads the cell's best weights (best.weights.h5) into the registry model and scales pixels
as Transform does (models/preprocessing.py), so no export is needed. Prints JSON.
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a cell's checkpoint directory")
    parser.add_argument("--model", required=True, help="the registry model the checkpoint was trained as")
    parser.add_argument("--data", required=True)
    parser.add_argument("--usage", default="PublicTest")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from core import names
    from models import preprocessing, registry, trainer
    from tools import evaluate

    model = registry.build(args.model)
    model.load_weights(trainer.checkpoint_file(args.checkpoint, "best_weights"))
    labels, images, _ = evaluate.read_usage(args.data, args.usage)
    scaled = preprocessing.scale_pixels(tf.reshape(images, [len(images), -1])).numpy()
    plain = model.predict(scaled, batch_size=256, verbose=0)
    mirrored = model.predict(scaled[:, :, ::-1], batch_size=256, verbose=0)
    result = {"checkpoint": args.checkpoint, "model": args.model, "usage": args.usage, "examples": int(len(labels))}
    for name, probabilities in (("faces_only", plain), ("flip_tta", (plain + mirrored) / 2)):
        metrics = evaluate.evaluation_metrics(labels, probabilities)
        result[name] = {"accuracy": round(metrics["accuracy"], 4), names.TOP2_ACCURACY: round(metrics[names.TOP2_ACCURACY], 4),
                        "recall": {k: None if v["recall"] is None else round(v["recall"], 4)  # None: no support
                                   for k, v in metrics["per_class"].items()}}
    result["accuracy_gain"] = round(result["flip_tta"]["accuracy"] - result["faces_only"]["accuracy"], 4)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
