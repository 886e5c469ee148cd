"""Ships a pipeline run's pushed model as the project's default, with its model card.

    .venv/bin/python bench/ship_model.py --run runs/full_compact --data ../shared/data/fer2013/fer2013.csv.gz \
        --train-command "fer-pipeline run ..." --train-commit <sha>

1. takes the run's newest pushed version (OUTPUT/serving_model/fer/<version>: blessed by the
   Evaluator on PublicTest) and copies it to models/pretrained/<model>/<version>/, replacing
   every model shipped before (the repository holds one, within 10 MB); the Trainer summary
   read is the one of the Trainer execution that exported this very SavedModel;
2. evaluates the copy through its serving_default signature (fer-pipeline evaluate's code)
   on PublicTest, on PrivateTest when the file has it, and on the validation carve that
   selected it;
3. writes model_card.json (every figure, as measured) and MODEL_CARD.md beside the versions.
The figures in the card come from this script's own measurements and the Trainer's summary,
never from hand-typed numbers; tests/models/test_shipped_model.py re-measures PublicTest.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from core import features, names  # noqa: E402

MAX_SHIPPED_BYTES = 10 * 1024 * 1024
PAPER_ACCURACY = 0.6058  # the paper's best (Table V), the time-to-accuracy mark


def _latest(pattern, key=os.path.getmtime):
    found = glob.glob(pattern)
    if not found:
        raise SystemExit(f"nothing matches {pattern}")
    return max(found, key=key)


def time_to_accuracy(history, mark):
    """(epoch, cumulative wall seconds) when validation accuracy first reached `mark`, or None."""
    elapsed = 0.0
    for entry in history:
        elapsed += entry.get("seconds", 0.0)
        if entry["val_accuracy"] >= mark:
            return entry["epoch"], elapsed
    return None


def trainer_execution_of(pushed, run):
    """The FerTrainer/model_run/<execution> folder whose model the Pusher copied to `pushed`:
    the execution whose exported saved_model.pb is byte-identical to the pushed one."""
    with open(os.path.join(pushed, "saved_model.pb"), "rb") as f:
        pushed_graph = f.read()
    trainer = os.path.join(run, "pipeline_root", "FerTrainer")
    for exported in glob.glob(os.path.join(trainer, "model", "*", "Format-Serving", "saved_model.pb")):
        with open(exported, "rb") as f:
            if f.read() == pushed_graph:
                return os.path.join(trainer, "model_run", exported.split(os.sep)[-3])
    raise SystemExit(f"{pushed}: no FerTrainer execution under {trainer} exported this model")


def model_source(model):
    """Where the model's code is: its catalogue module's file, with the widths it is built at."""
    from models import catalog

    entry = catalog.ENTRIES[model]
    source = entry.module.replace(".", "/") + ".py"
    return source + (f" built with {dict(entry.build_kwargs)}" if entry.build_kwargs else "")


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the fer-pipeline run directory (--output)")
    p.add_argument("--data", required=True, help="the FER CSV the run trained on")
    p.add_argument("--train-command", required=True)
    p.add_argument("--train-commit", required=True)
    p.add_argument("--note", action="append", default=[], help="a line for the card's training section")
    args = p.parse_args(argv)

    from tools import evaluate

    pushed = _latest(os.path.join(args.run, "serving_model", features.SERVING_MODEL_NAME, "*"),
                     key=lambda d: int(os.path.basename(d)))
    summary_path = os.path.join(trainer_execution_of(pushed, args.run), names.TRAINING_SUMMARY_FILE)
    summary = json.load(open(summary_path))
    model = summary["model"]
    version = os.path.basename(pushed)
    pretrained = os.path.join(REPO, "models", "pretrained")
    for previous in glob.glob(os.path.join(pretrained, "*")):
        print(f"removing the previously shipped {previous}", file=sys.stderr)
        shutil.rmtree(previous)
    base = os.path.join(pretrained, model)
    shipped = os.path.join(base, version)
    shutil.copytree(pushed, shipped)
    size = directory_bytes(base)
    if size > MAX_SHIPPED_BYTES:
        raise SystemExit(f"{base}: {size} bytes, over the 10 MB the repository allows for the shipped model")

    results = {}
    for usage in ("PublicTest", "PrivateTest", evaluate.CARVE):
        try:
            results[usage] = evaluate.evaluate(shipped, args.data, usage)
        except ValueError as e:  # no such rows (this copy of FER-2013 has no PrivateTest)
            results[usage] = {"not_measured": str(e)}
    from models import macs, registry

    keras_model = registry.build(model)
    cost = {"forward_passes": macs.forward_passes(shipped, keras_model),
            "multiply_adds_per_face": macs.serving_macs(shipped, keras_model),
            "paper_cnn_multiply_adds_per_face": macs.count_macs(registry.build("proposed_cnn"))}
    history = summary["history"]
    reached = time_to_accuracy(history, PAPER_ACCURACY)
    card = {
        "model": model,
        "source": model_source(model),
        "version": version,
        "shipped_bytes": size,
        "parameters": summary["parameters"],
        "cost": cost,
        "data": os.path.basename(args.data),
        "train_command": args.train_command,
        "train_commit": args.train_commit,
        "config": {k: v for k, v in summary["config"].items() if k not in ("checkpoint_dir", "class_weights")},
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "stopped_early": summary["stopped_early"],
        "best_valid_accuracy": summary["best_val_accuracy"],
        "training_wall_seconds": round(summary.get("train_seconds_total", sum(h.get("seconds", 0.0) for h in history)), 1),
        "training_pieces": summary.get("pieces", 1),
        "time_to_paper_accuracy": ({"epoch": reached[0], "seconds": round(reached[1], 1)} if reached else None),
        "history": history,
        "evaluation": results,
        "measured": datetime.date.today().isoformat(),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}",
    }
    with open(os.path.join(base, "model_card.json"), "w") as f:
        json.dump(card, f, indent=1)
    with open(os.path.join(base, "MODEL_CARD.md"), "w") as f:
        f.write(render_card(card, args.note))
    print(json.dumps({k: v for k, v in card.items() if k not in ("history", "evaluation")}, indent=1))
    print(json.dumps({u: {k: r.get(k) for k in ("examples", "accuracy", names.TOP2_ACCURACY, names.MACRO_F1)}
                      for u, r in results.items()}, indent=1))
    if features.SHIPPED_MODEL_NAME != model:
        print(f"core/features.py: set SHIPPED_MODEL_NAME = {model!r}: serve, predict and analyze() read it",
              file=sys.stderr)


def _pct(value):
    return "—" if value is None else f"{100 * value:.2f} %"


def render_card(card, notes):
    public = card["evaluation"]["PublicTest"]
    carve = card["evaluation"][next(k for k in card["evaluation"] if k not in ("PublicTest", "PrivateTest"))]
    private = card["evaluation"]["PrivateTest"]
    lines = [
        f"# Model card: {card['model']} (version {card['version']})",
        "",
        "The project's shipped model: the default of `fer-pipeline serve`, `fer-pipeline predict` and",
        "`client.analyze`. Trained and evaluated by this repository's own TFX pipeline. Every figure",
        "below was written by `bench/ship_model.py` from the run's Trainer summary and its own",
        "evaluation of this SavedModel (model_card.json holds them all, unrounded).",
        "",
        "## Model",
        f"- `{card['model']}` ({card['source']}): {card['parameters']:,} parameters; "
        f"{card['shipped_bytes'] / 1e6:.2f} MB on disk with its Transform graph and its int8 TFLite twin.",
        f"- Cost: {card['cost']['multiply_adds_per_face'] / 1e6:.1f} M multiply-adds per face as `serving_default` "
        f"runs it ({card['cost']['forward_passes']} forward pass(es) of the network), "
        f"1/{card['cost']['paper_cnn_multiply_adds_per_face'] / card['cost']['multiply_adds_per_face']:.1f} of "
        f"the paper CNN's {card['cost']['paper_cnn_multiply_adds_per_face'] / 1e6:.1f} M (models/macs.py).",
        "- Signatures as every pushed model: `serving_default` (uint8 image [N,48,48,1] -> probabilities",
        "  float32 [N,7], FER label order), `classify` (serialized tf.Example -> scores, classes),",
        "  `transform_features`.",
        "- Test-time augmentation (each face averaged with its mirror image) is inside the signatures: "
        + ("yes." if card["config"].get("tta") else "no."),
        "",
        "## Data and splits",
        f"- FER-2013 ({card['data']}): the Training and PublicTest rows"
        + (" (this copy has no PrivateTest)." if "not_measured" in private else ", and PrivateTest."),
        f"- Training -> `train` and `valid` ({carve.get('examples', '?')} rows, seeded and stratified by class):",
        "  the `valid` carve alone selected the model (early stopping or the best epoch's weights, and",
        "  the learning-rate schedule where it reacts to a plateau).",
        "- PublicTest -> `eval`: never seen in training or selection; reported and blessed on.",
        "",
        "## How it was trained",
        f"- Command: `{card['train_command']}`",
        f"- Commit: `{card['train_commit']}`",
        f"- Recipe: {json.dumps(card['config'], sort_keys=True)}",
        f"- Epochs run: {card['epochs_run']} (best: epoch {card['best_epoch']}; "
        f"{'stopped early' if card['stopped_early'] else 'did not stop early'}), wall time "
        f"{card['training_wall_seconds'] / 60:.1f} min of training in {card['training_pieces']} piece(s) on "
        f"{card['machine']}.",
    ]
    reached = card["time_to_paper_accuracy"]
    lines.append(f"- Validation accuracy first reached the paper's 60.58 % at epoch {reached['epoch']}, after "
                 f"{reached['seconds'] / 60:.1f} min." if reached else
                 "- Validation accuracy never reached the paper's 60.58 %.")
    lines += [f"- {note}" for note in notes]
    lines += [
        "",
        "## Results (measured " + card["measured"] + " through `serving_default`, model selected on `valid`)",
        "",
        "| split | examples | accuracy | top-2 | macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for name, result in (("PublicTest (eval)", public), ("valid carve (selection split)", carve),
                         ("PrivateTest (test)", private)):
        if "not_measured" in result:
            lines.append(f"| {name} | — | not measured: {result['not_measured']} | | |")
        else:
            lines.append(f"| {name} | {result['examples']} | {_pct(result['accuracy'])} | "
                         f"{_pct(result[names.TOP2_ACCURACY])} | {_pct(result[names.MACRO_F1])} |")
    lines += ["", "The valid row is the split that chose the model, so it is optimistic; PublicTest is the",
              "honest figure.", "", "Per-class recall and precision on PublicTest:", "",
              "| class | support | recall | precision |", "|---|---|---|---|"]
    for name in features.CLASS_NAMES:
        row = public["per_class"][name]
        lines.append(f"| {name} | {row['support']} | {_pct(row['recall'])} | {_pct(row['precision'])} |")
    lines += ["", "Confusion matrix on PublicTest (rows: true class, columns: predicted):", "",
              "| | " + " | ".join(features.CLASS_NAMES) + " |", "|---" * (features.NUM_CLASSES + 1) + "|"]
    for name, row in zip(features.CLASS_NAMES, public["confusion_matrix"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        "## Limits",
        "- FER-2013 is faces found by web image search: mostly frontal, posed or semi-posed, with the",
        "  demographics of those searches (no balance of age, skin tone or gender is documented), and",
        "  labels from single annotators with known noise. Accuracy on other populations, on profile or",
        "  occluded faces, or in other lighting is unmeasured and likely lower.",
        "- The input is a 48x48 grayscale frontal face crop; detection, alignment and cropping happen",
        "  before the model (client/faces.py) and their errors are not the model's to fix.",
        "- Seven posed-expression categories are not a person's emotional state. This model is not for",
        "  decisions about people: not for hiring, education, policing, health, credit or any",
        "  assessment of an individual.",
        "",
        "## Per-epoch curve (from the Trainer's checkpoint state)",
        "",
        "| epoch | train accuracy | valid accuracy | learning rate | seconds |",
        "|---|---|---|---|---|",
    ]
    for h in card["history"]:
        lines.append(f"| {h['epoch']} | {h['accuracy']:.4f} | {h['val_accuracy']:.4f} | "
                     f"{h.get('learning_rate', float('nan')):.2e} | {h.get('seconds', float('nan')):.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
