"""Which training levers pay, one at a time, at a fixed short budget, on the valid carve alone.

Every cell trains with models.trainer.train (the Trainer's own loop: augmentation, schedules,
checkpoints) on a pipeline run's transformed train split and selects and scores on its valid
split; PublicTest is never read. A cell is the base recipe with one lever changed, plus the
shipped version 1 recipe as the reference. Each cell prints one JSON line: its best valid
accuracy without and with flip test-time augmentation (the best epoch's weights), the epoch
it was reached, training images/s, and the time to reach TARGET valid accuracy.

    .venv/bin/python bench/recipe_ablation.py --run runs/paper_cnn --out runs/ablation \
        --results bench/results/recipe_ablation.jsonl [--epochs 15] [--cells base,v1,...] [--teacher A,B]
    .venv/bin/python bench/recipe_ablation.py --results bench/results/recipe_ablation.jsonl --report
    .venv/bin/python bench/recipe_ablation.py --run runs/paper_cnn --out runs/ablation --results - \
        --teacher A,B --teacher-accuracy
    .venv/bin/python bench/recipe_ablation.py --out runs/ablation --results - --valid-metrics

Cells run one after another, each in its own process (a clean Keras state), and resume: a
cell with a result line is skipped, a cell that was killed continues from its last epoch.
Raw lines are appended to --results; bench/results/recipe_ablation.md reads them.
"""

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import cells  # noqa: E402  (bench/cells.py)

TARGET = 0.606  # the paper's PublicTest accuracy, as a valid-carve milestone (time to accuracy)
WIDE = (32, (56, 112, 224))  # 75.7 M multiply-adds: one pass within 88.5 M, no TTA
MID = (32, (40, 80, 176))

# The base: the field's recipe (shift/flip/rotation, Nesterov SGD, warm-up + cosine, label
# smoothing, bf16). The budget's epochs are filled in at run time (cosine spans them).
BASE = {"model": "compact_resnet", "optimizer": "nesterov", "learning_rate": 0.05, "lr_schedule": "cosine",
        "warmup_epochs": 2, "label_smoothing": 0.1, "augment": True, "batch_size": 64,
        "precision": "mixed_bfloat16", "patience": 1000, "tta": True}
CELLS = {
    "v1": {"model": "compact_resnet"},  # the shipped recipe (catalogue defaults), unchanged
    "base": BASE,
    "base_no_smoothing": {**BASE, "label_smoothing": 0.0},
    "base_lr0.01": {**BASE, "learning_rate": 0.01},
    "base_erasing": {**BASE, "random_erasing": 0.5},
    "base_mixup": {**BASE, "mixup": 0.2},
    "base_float32": {**BASE, "precision": "float32"},
    "base_mid": {**BASE, "model": "compact_resnet_mid"},
    "base_wide": {**BASE, "model": "compact_resnet_wide", "tta": False},
    # Distillation (models/distillation.py) into the wide variant from --teacher's SavedModels.
    "base_wide_teacher": {**BASE, "model": "compact_resnet_wide", "tta": False, "distill_alpha": 0.5, "teacher": True},
}


def register_variants():
    from models import catalog

    for name, (stem, modules) in (("compact_resnet_mid", MID), ("compact_resnet_wide", WIDE)):
        catalog.ENTRIES[name] = catalog.ModelEntry(
            name, "models.compact_resnet", f"compact_resnet {stem} {modules}",
            build_kwargs={"stem_filters": stem, "module_filters": modules, "name": name})


def latest(pattern):
    found = sorted(glob.glob(pattern), key=lambda p: int(os.path.basename(p)) if os.path.basename(p).isdigit() else -1)
    if not found:
        raise SystemExit(f"no {pattern}: run the pipeline's data stages first")
    return found[-1]


def missing_data(run, out, splits=("train", "valid")):
    """What a command that reads the splits lacks, in words, or None: --run builds the cache
    under OUT/data, so it is needed only where the cache is not there."""
    if run or all(os.path.exists(os.path.join(out, "data", f"{split}.npz")) for split in splits):
        return None
    return f"--run is needed: no data cache under {os.path.join(out, 'data')}"


def load_split(run, split, cache):
    """The run's transformed split as in-memory arrays (cached as .npz)."""
    import numpy as np

    path = os.path.join(cache, f"{split}.npz")
    if os.path.exists(path):
        data = np.load(path)
        return data["x"], data["y"]
    import tensorflow_transform as tft
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts

    from models import trainer

    root = os.path.join(run, "pipeline_root", "Transform")
    examples = standard_artifacts.Examples()
    examples.uri = latest(f"{root}/transformed_examples/*")
    examples.split_names = artifact_utils.encode_split_names(["train", "valid"])
    tft_output = tft.TFTransformOutput(latest(f"{root}/transform_graph/*"))
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None, data_view_decode_fn=None)
    dataset = trainer.make_dataset(f"{examples.uri}/Split-{split}/*", accessor, tft_output, 512, shuffle=False, seed=0)
    xs, ys = zip(*[(x.numpy(), y.numpy().reshape(-1)) for x, y in dataset])
    x, y = np.concatenate(xs), np.concatenate(ys)
    os.makedirs(cache, exist_ok=True)
    np.savez(path + ".tmp.npz", x=x, y=y)
    os.replace(path + ".tmp.npz", path)
    return x, y


def run_cell(name, args):
    import numpy as np
    import tensorflow as tf

    from models import trainer
    from models.train_config import TrainConfig

    register_variants()
    x, y = load_split(args.run, "train", os.path.join(args.out, "data"))
    vx, vy = load_split(args.run, "valid", os.path.join(args.out, "data"))
    values = {**CELLS[name], "epochs": args.epochs, "resume": True, "seed": 42}
    if values.pop("teacher", False):
        if not args.teacher:
            raise SystemExit(f"cell {name} distils: give --teacher")
        values["teacher_dirs"] = split_sources(args.teacher)
    config = TrainConfig.from_dict(values)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=42).batch(config.batch_size)
    valid_ds = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(256)
    cell_dir = os.path.join(args.out, name)
    model, summary = trainer.train(config, train_ds, valid_ds, os.path.join(cell_dir, "logs"),
                                   os.path.join(cell_dir, "checkpoints"))
    plain = model.predict(vx, batch_size=256, verbose=0)
    mirrored = model.predict(vx[:, :, ::-1], batch_size=256, verbose=0)
    history = summary["history"]
    reached = cells.reached(history, TARGET)
    epoch_seconds = [h["seconds"] for h in history]
    print(json.dumps({
        "cell": name, "recipe": {k: v for k, v in values.items() if k not in ("resume",)},
        "epochs": summary["epochs_run"], "pieces": summary["pieces"],
        "best_epoch": summary["best_epoch"], "valid_accuracy": round(summary["best_val_accuracy"], 4),
        "valid_accuracy_recomputed": round(float((plain.argmax(1) == vy).mean()), 4),
        "valid_accuracy_flip_tta": round(float(((plain + mirrored).argmax(1) == vy).mean()), 4),
        "train_seconds": round(summary["train_seconds_total"], 1),
        "median_epoch_seconds": sorted(epoch_seconds)[len(epoch_seconds) // 2],
        "train_images": int(len(x)), "valid_images": int(len(vx)),
        f"time_to_valid_{TARGET}": reached,
        "valid_curve": [round(h["val_accuracy"], 4) for h in history],
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }), flush=True)


def teacher_accuracy(args):
    """The --teacher ensemble's and each member's accuracy on the valid carve (one JSON line)."""
    import tensorflow as tf

    from models import distillation

    vx, vy = load_split(args.run, "valid", os.path.join(args.out, "data"))
    members = distillation.load_teacher(split_sources(args.teacher))
    valid = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(256)
    print(json.dumps({
        "teacher": [{"model": m.name, "tta": m.tta, "saved_model": m.saved_model} for m in members],
        "valid_images": int(len(vy)), "teacher_valid_accuracy": round(distillation.ensemble_accuracy(members, valid), 4),
        "members_valid_accuracy": [round(distillation.ensemble_accuracy([m], valid), 4) for m in members],
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }), flush=True)
    return 0


def valid_metrics(args, cell_names):
    """Each finished or started cell's best weights on the valid carve: accuracy, top-2 and
    macro-F1 without TTA (one JSON line a cell; cells without a checkpoint are skipped)."""
    from core import names
    from models import registry, trainer
    from tools import evaluate

    register_variants()
    vx, vy = load_split(args.run, "valid", os.path.join(args.out, "data"))
    for name in cell_names:
        weights = trainer.checkpoint_file(os.path.join(args.out, name, "checkpoints"))
        if not weights:
            continue
        model = registry.build(CELLS[name]["model"])
        model.load_weights(weights)
        result = evaluate.evaluation_metrics(vy, model.predict(vx, batch_size=256, verbose=0))
        print(json.dumps({
            "cell": name, "weights": os.path.relpath(weights, args.out), "valid_images": int(len(vy)),
            **{key: round(float(result[key]), 4) for key in ("accuracy", names.TOP2_ACCURACY, names.MACRO_F1)},
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }), flush=True)
    return 0


def split_sources(teacher):
    """--teacher's list, as the pipeline splits it (components/teacher)."""
    from components.teacher import logic

    return logic.split_sources(teacher)


def lever(name):
    """What a cell changes against the base recipe, in words."""
    if name in ("base", "v1"):
        return {"base": "the base recipe", "v1": "version 1's recipe (Adam 1e-3 halved on plateaus, float32)"}[name]
    changed = {k: v for k, v in CELLS[name].items() if BASE.get(k) != v and k != "teacher"}
    if CELLS[name].get("teacher"):
        changed["teacher"] = "--teacher"
    return ", ".join(f"{k} {json.dumps(v)}" for k, v in changed.items())


def report(records, epochs):
    """The results page: one row a cell at the `epochs` budget, then the raw lines."""
    rows = [r for r in records if r.get("epochs") == epochs]
    base = next((r for r in rows if r["cell"] == "base"), None)
    lines = [f"| cell | change against base | valid accuracy (best epoch) | with flip TTA | vs base | "
             f"median epoch s | time to {TARGET:.1%} valid (shared machine, all pieces) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = "" if base is None or r is base else f"{100 * (r['valid_accuracy'] - base['valid_accuracy']):+.2f} pt"
        reached = r.get(f"time_to_valid_{TARGET}")
        lines.append(f"| {r['cell']} | {lever(r['cell'])} | {100 * r['valid_accuracy']:.2f} % ({r['best_epoch']}) | "
                     f"{100 * r['valid_accuracy_flip_tta']:.2f} % | {delta} | {r['median_epoch_seconds']:.1f} | "
                     + (f"epoch {reached['epoch']}, {reached['seconds']:.0f} s" if reached else "not reached") + " |")
    return "\n".join(lines + ["", "Raw lines:", "", "```"] + [json.dumps(r) for r in rows] + ["```", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a fer-pipeline run whose Transform ran on the full data")
    parser.add_argument("--out", help="cells' checkpoints and the data cache")
    parser.add_argument("--results", required=True, help="JSON lines file the results are appended to")
    parser.add_argument("--epochs", type=int, default=15, help="the fixed budget of every cell")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated, from: " + ", ".join(CELLS))
    parser.add_argument("--teacher", help="comma-separated SavedModels: the teacher of the *_teacher cells")
    parser.add_argument("--teacher-accuracy", action="store_true",
                        help="print the --teacher ensemble's valid accuracy (and each member's) and exit")
    parser.add_argument("--valid-metrics", action="store_true",
                        help="print each --cells cell's best weights' valid accuracy, top-2 and macro-F1 and exit")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # one cell, in this process
    parser.add_argument("--report", action="store_true", help="print the results file as a markdown table and exit")
    args = parser.parse_args(argv)
    if args.cell:
        return run_cell(args.cell, args)
    if args.teacher_accuracy:
        if not (args.teacher and args.run and args.out):
            parser.error("--teacher-accuracy needs --teacher, --run and --out")
        return teacher_accuracy(args)
    if args.valid_metrics:
        if not args.out:
            parser.error("--valid-metrics needs --out (and --run when the data cache is not there)")
        if missing_data(args.run, args.out, ("valid",)):
            parser.error(missing_data(args.run, args.out, ("valid",)))
        return valid_metrics(args, cells.chosen(parser, args.cells, CELLS))
    if args.report:
        with open(args.results) as f:
            print(report([json.loads(line) for line in f if line.strip()], args.epochs))
        return 0
    if not (args.run and args.out):
        parser.error("--run and --out are required to run cells")
    names = cells.chosen(parser, args.cells, CELLS)
    if not args.teacher and any(CELLS[name].get("teacher") for name in names):
        parser.error("the *_teacher cells distil: give --teacher (or leave them out of --cells)")
    return cells.run_cells(names, args.results, lambda name: [
        __file__, "--run", args.run, "--out", args.out, "--results", args.results, "--epochs", str(args.epochs),
        "--cell", name] + (["--teacher", args.teacher] if args.teacher else []), keep=lambda record: record.get("epochs") == args.epochs)


if __name__ == "__main__":
    sys.exit(main())
