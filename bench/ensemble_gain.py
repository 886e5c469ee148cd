"""What averaging the probabilities of several pushed models gains over each alone: the headroom of
an ensemble teacher for distillation (issue "Models that lead the field"). Not a speed benchmark.

Every model is called through its `serving_default` signature (TTA included where it has it) on
the valid carve and on PublicTest of a FER CSV; every combination of two or more models is
scored by the mean of their probabilities. Pick a combination on `valid`; PublicTest reports.

    .venv/bin/python bench/ensemble_gain.py --data ../shared/data/fer2013/fer2013.csv.gz \
        --model v1=DIR --model v2=models/pretrained/compact_resnet_v2/<version> [--model NAME=DIR ...]
"""

import argparse
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SPLITS = ("valid", "PublicTest")  # the split that selects a combination, then the one that reports it


def combinations(names):
    """Each model alone, then every combination of two or more, in the order given."""
    return [c for n in range(1, len(names) + 1) for c in itertools.combinations(names, n)]


def scores(labels, probabilities, names):
    """{"a+b": metrics} of the mean of the named models' probabilities, for every combination."""
    from core import names as keys
    from tools import evaluate

    out = {}
    for combo in combinations(names):
        mean = sum(probabilities[name] for name in combo) / len(combo)
        metrics = evaluate.evaluation_metrics(labels, mean)
        out["+".join(combo)] = {k: round(float(metrics[k]), 4) for k in ("accuracy", keys.TOP2_ACCURACY, keys.MACRO_F1)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a FER CSV with Training and PublicTest rows")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=DIR",
                        help="a pushed model's SavedModel folder, named (two or more)")
    args = parser.parse_args(argv)
    models = dict(spec.split("=", 1) for spec in args.model if "=" in spec)
    if len(models) != len(args.model) or len(models) < 2:
        parser.error("give two or more --model NAME=DIR, each with its own name")
    missing = [d for d in models.values() if not os.path.isfile(os.path.join(d, "saved_model.pb"))]
    if missing:
        parser.error(f"no saved_model.pb in {missing[0]}")
    from tools import evaluate

    result = {}
    for split in SPLITS:
        labels, images, _ = evaluate.read_usage(args.data, split)
        probabilities = {name: evaluate.predict(path, images) for name, path in models.items()}
        result[split] = scores(labels, probabilities, list(models))
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": args.data, "models": models,
                      "mean_of_probabilities": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
