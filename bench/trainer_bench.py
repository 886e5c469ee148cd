"""Trainer input-pipeline benchmark: images/s of the Trainer's real input path against a
plain `model.fit` on the same images held in memory, same process, same model.

The Trainer path is models.trainer.make_dataset over a pipeline run's transformed
examples (TFX DataAccessor -> TFXIO -> tf.data, exactly what run_fn uses); the baseline
feeds the same images as numpy arrays. The first 2 batches (tracing) are not timed.

    .venv/bin/python bench/trainer_bench.py --run runs/fer3000 [--images 2048] [--batch-size 128]
Goal: Trainer path >= 0.9x the in-memory images/s.
"""

import argparse
import glob
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Timer:
    def __init__(self, skip=2):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch + 1 == skip:
                    outer.start = time.perf_counter()
                outer.end = time.perf_counter()
                outer.batches = batch + 1

        self.callback = Callback()
        self.skip = skip

    def images_per_s(self, batch_size):
        return (self.batches - self.skip) * batch_size / (self.end - self.start)


def latest(pattern):
    found = sorted(glob.glob(pattern), key=lambda p: int(p.rstrip("/").split("/")[-1]))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: run `fer-pipeline run` first")
    return found[-1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, help="a fer-pipeline run directory")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts

    from models import registry, trainer

    root = os.path.join(args.run, "pipeline_root", "Transform")
    examples = standard_artifacts.Examples()
    examples.uri = latest(f"{root}/transformed_examples/*")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    tft_output = tft.TFTransformOutput(latest(f"{root}/transform_graph/*"))
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    steps = args.images // args.batch_size
    dataset = trainer.make_dataset(f"{examples.uri}/Split-train/*", accessor, tft_output, args.batch_size,
                                   shuffle=True, seed=0).take(steps)
    x, y = [], []
    for images, labels in dataset:
        x.append(images.numpy())
        y.append(labels.numpy())
    x, y = np.concatenate(x), np.concatenate(y)
    if len(x) < steps * args.batch_size:
        raise SystemExit(f"only {len(x)} training images in {examples.uri}; lower --images")

    config = trainer.TrainConfig()
    results = {}
    for name in ("in_memory", "trainer_path", "in_memory_again"):
        model = trainer.compile_model(registry.build(config.model), config)
        timer = Timer()
        if name.startswith("in_memory"):
            model.fit(x, y, batch_size=args.batch_size, epochs=1, callbacks=[timer.callback], verbose=0, shuffle=True)
        else:
            model.fit(dataset, epochs=1, callbacks=[timer.callback], verbose=0)
        results[name] = timer.images_per_s(args.batch_size)
    baseline = (results["in_memory"] + results["in_memory_again"]) / 2
    print(json.dumps({
        "images": int(steps * args.batch_size),
        "batch_size": args.batch_size,
        "images_per_s": {k: round(v, 1) for k, v in results.items()},
        "ratio_trainer_over_in_memory": round(results["trainer_path"] / baseline, 3),
        "goal_ratio_at_least": 0.9,
        "tf_threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter": tf.config.threading.get_inter_op_parallelism_threads()},
        "machine": f"{platform.node()} {os.cpu_count()} cores",
    }, indent=1))


if __name__ == "__main__":
    main()
