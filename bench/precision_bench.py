"""Training speed-ups on this CPU: images/s of one model's training step under keras'
float32 and mixed_bfloat16 policies and several batch sizes, on the same in-memory images
(random faces: speed does not depend on content), all in one process so the baseline
(float32 at the recipe's batch size) is measured in the same run. Optionally, accuracy
after a few epochs on real data for both policies (--data, --epochs).

    .venv/bin/python bench/precision_bench.py --models compact_resnet_v2,proposed_cnn --batch-sizes 64,128
    .venv/bin/python bench/precision_bench.py --models compact_resnet_v2 --batch-sizes 64 \
        --data ../shared/data/fer2013/fer2013.csv.gz --epochs 3

bf16 only pays on CPUs with bf16 units (lscpu: amx_bf16 or avx512_bf16); the result
records which flags this machine has. The first 3 batches (tracing) are not timed. Each model
trains with its recipe's loss (one-hot targets where the recipe smooths or mixes labels), but
without the recipe's augmentation or mixup: this times the model's training step alone.
"""

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # trainer_bench, also when a test loads this file

from trainer_bench import Timer  # noqa: E402


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def load_real(path, max_rows):
    """Training -> (train, valid carve), PublicTest -> eval, through the ExampleGen's parser."""
    import numpy as np

    from components.fer_example_gen import parser
    from core import features

    data = {s: ([], []) for s in features.SPLITS}
    for item in parser.FerCsvReader(path, max_rows_per_split=max_rows):
        if isinstance(item, parser.Row):
            data[item.split][0].append(item.pixels.reshape(features.IMAGE_SHAPE))
            data[item.split][1].append(item.label)
    return {s: (np.stack(x).astype("float32") / 255.0, np.array(y)) for s, (x, y) in data.items() if x}


def targets(labels, config):
    """Class ids, or one-hot rows where the recipe's loss expects them (label smoothing, mixup)."""
    import numpy as np

    from core import features

    return np.eye(features.NUM_CLASSES, dtype="float32")[labels] if config.soft_labels else labels


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="proposed_cnn,compact_resnet_v2")
    p.add_argument("--batch-sizes", default="64")
    p.add_argument("--images", type=int, default=3072, help="images per timed fit")
    p.add_argument("--data", help="FER CSV for the accuracy comparison")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-rows", type=int, default=None)
    args = p.parse_args(argv)

    import keras
    import numpy as np

    from models import catalog, registry, trainer

    for name in args.models.split(","):
        try:
            catalog.entry(name)
        except ValueError as e:
            raise SystemExit(f"--models: {e}") from None

    rng = np.random.default_rng(0)
    x = rng.random((args.images, 48, 48, 1), dtype=np.float32)
    y = rng.integers(0, 7, args.images)
    speed = []
    for name in args.models.split(","):
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            for policy in ("float32", "mixed_bfloat16"):
                keras.mixed_precision.set_global_policy(policy)
                config = trainer.TrainConfig.from_dict({"model": name, "batch_size": batch})
                model = trainer.compile_model(registry.build(name), config)
                timer = Timer(skip=3)
                model.fit(x, targets(y, config), batch_size=batch, epochs=1, callbacks=[timer.callback], verbose=0)
                speed.append({"model": name, "batch_size": batch, "policy": policy,
                              "images_per_s": round(timer.images_per_s(batch), 1)})
                print(json.dumps(speed[-1]), flush=True)
    result = {"speed": speed}
    if args.data:
        data = load_real(args.data, args.max_rows)
        accuracy = []
        for name in args.models.split(","):
            for policy in ("float32", "mixed_bfloat16"):
                keras.mixed_precision.set_global_policy(policy)
                keras.utils.set_random_seed(0)
                config = trainer.TrainConfig.from_dict({"model": name})
                model = trainer.compile_model(registry.build(name), config)
                started = time.time()
                history = model.fit(data["train"][0], targets(data["train"][1], config),
                                    batch_size=config.batch_size, epochs=args.epochs,
                                    validation_data=(data["valid"][0], targets(data["valid"][1], config)),
                                    verbose=0)
                seconds = time.time() - started
                _, eval_acc, _ = model.evaluate(data["eval"][0], targets(data["eval"][1], config), verbose=0)
                accuracy.append({"model": name, "policy": policy, "epochs": args.epochs,
                                 "fit_seconds": round(seconds, 1),
                                 "valid_accuracy_per_epoch": [round(v, 4) for v in history.history["val_accuracy"]],
                                 "eval_accuracy_after_last_epoch": round(float(eval_acc), 4)})
                print(json.dumps(accuracy[-1]), flush=True)
        result["accuracy"] = accuracy
    keras.mixed_precision.set_global_policy("float32")
    result["machine"] = f"{platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    result["cpu_bf16_flags"] = cpu_flags()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
