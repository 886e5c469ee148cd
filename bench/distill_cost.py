"""What a teacher costs a training epoch: the shipped recipe's student trained on the same
faces with and without --teacher (models/distillation.py runs the teacher on every training
batch), alternated in one run (each mode first in every other round) so both see the same
machine.

    .venv/bin/python bench/distill_cost.py --run runs/paper_cnn --out runs/ablation \
        --teacher shipped [--images 4096] [--epochs 4] [--rounds 2]

Each measurement trains `--epochs` epochs of the catalogue's `--model` recipe (its precision,
batch size, mixup) from scratch on the first --images faces of the run's transformed train
split, validating on 256 valid faces; each epoch after the first (which traces the graphs) gives
an images/s figure, and the ratio compares the two modes' medians. The data comes from
bench/recipe_ablation.py's cache under --out (made from --run when it is not there). One JSON
document on stdout.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import recipe_ablation  # noqa: E402  (bench/recipe_ablation.py: the transformed splits' cache)
from core import arg_types  # noqa: E402

VALID_IMAGES = 256


def epoch_rates(model, x, y, vx, vy, epochs, teacher_dirs):
    """Training images/s of each epoch after the first (fit and validation; the first traces
    the graphs)."""
    import tensorflow as tf

    from models import trainer
    from models.train_config import TrainConfig

    config = TrainConfig.from_dict({"model": model, "epochs": epochs, "patience": epochs + 1,
                                    "teacher_dirs": teacher_dirs or None})
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=42).batch(config.batch_size)
    valid_ds = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(256)
    with tempfile.TemporaryDirectory() as scratch:
        _, summary = trainer.train(config, train_ds, valid_ds, os.path.join(scratch, "logs"),
                                   os.path.join(scratch, "checkpoints"))
    return [round(len(x) / h["seconds"], 1) for h in summary["history"][1:]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a fer-pipeline run whose Transform ran on the full data (for the cache)")
    parser.add_argument("--out", required=True, help="bench/recipe_ablation.py's --out: its data cache")
    parser.add_argument("--teacher", required=True, help="comma-separated SavedModels, as fer-pipeline run's --teacher "
                                                         "takes them (`shipped`, a SavedModel or a base path)")
    parser.add_argument("--model", default="compact_resnet_v2", help="the student's catalogue entry (its recipe)")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=arg_types.ranged(int, 2, what="a whole number >= 2 (the first epoch traces "
                                                                        "the graphs and is not timed)"), default=4)
    parser.add_argument("--rounds", type=arg_types.positive_int, default=2)
    args = parser.parse_args(argv)
    if recipe_ablation.missing_data(args.run, args.out):
        parser.error(recipe_ablation.missing_data(args.run, args.out))
    from components.teacher import logic as teacher_logic

    teacher = teacher_logic.resolve(args.teacher)  # as the pipeline resolves --teacher (`shipped`, base paths)
    x, y = recipe_ablation.load_split(args.run, "train", os.path.join(args.out, "data"))
    vx, vy = recipe_ablation.load_split(args.run, "valid", os.path.join(args.out, "data"))
    x, y, vx, vy = x[:args.images], y[:args.images], vx[:VALID_IMAGES], vy[:VALID_IMAGES]
    load_before = os.getloadavg()
    rates = {"student_alone": [], "with_teacher": []}
    modes = [("student_alone", None), ("with_teacher", teacher)]
    for round_ in range(args.rounds):  # alternated, each mode first in every other round
        for mode, teacher_dirs in modes[::-1] if round_ % 2 else modes:
            rates[mode] += epoch_rates(args.model, x, y, vx, vy, args.epochs, teacher_dirs)
    median = {mode: statistics.median(values) for mode, values in rates.items()}
    print(json.dumps({
        "model": args.model, "teacher": teacher, "images": int(len(x)), "epochs_each": args.epochs,
        "images_per_s": rates, "median_images_per_s": median,
        "epoch_time_ratio_with_teacher": round(median["student_alone"] / median["with_teacher"], 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_before": [round(v, 2) for v in load_before],
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
