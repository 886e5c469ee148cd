"""The one catalogue of the models `--model NAME` picks from: each model's description, training
recipe and how to build it. TF-free and lazy: the CLI's help and pipeline/options.py read it
without loading Keras; a model's module is imported only when it is built
(models/registry.py builds by name).

A model's `train_defaults` are the models.train_config.TrainConfig values it trains with
unless the run says otherwise (the paper's models share the paper's recipe).
"""

import dataclasses
import importlib
from typing import Any, Callable, Dict, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    module: Optional[str]  # models.<module>.build(**build_kwargs) -> a keras.Model named `name`
    description: str
    train_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    build_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. another width
    builder: Optional[Callable[..., Any]] = None  # in place of a module (a test's own model)

    def build(self):
        """A new keras.Model (imports the model's module, and so Keras, on first use)."""
        builder = self.builder or importlib.import_module(self.module).build
        return builder(**self.build_kwargs)


# compact_resnet's recipe: Adam 1e-3 halved on plateaus, batch 64, augmentation, flip TTA.
COMPACT_RESNET_RECIPE = {"learning_rate": 1e-3, "lr_schedule": "plateau", "augment": True, "tta": True, "patience": 8,
                         "batch_size": 64}

# The shipped model's recipe. Version 2's, chosen by the ablation on the valid carve
# (bench/results/recipe_ablation.md): Nesterov SGD, 2 warm-up epochs then cosine decay over the
# whole run, label smoothing 0.1, augmentation, bf16 compute; the wider residual CNN serves one
# pass per face (no TTA: a mirror pass would double its 75.7 M multiply-adds past the budget of
# a quarter of the paper CNN's). Version 3 trained it twice as long with mixup 0.2 (version 2
# overfitted: train 91 %, valid 65 %) and beat it on the valid carve, 66.09 % against 64.97 %
# (bench/results/long_runs.md); `--epochs 100 --mixup 0` trains version 2 again. Its patience
# is the whole schedule: under cosine decay the valid accuracy stalls for long stretches while
# the rate is high (a 300-epoch run of this recipe had none from epoch 67 to 165, 98 epochs) and
# climbs as the rate decays (version 3's best: epoch 186 of 200). So the run trains every epoch
# and keeps its best one on valid. Version 4, shipped, is this recipe over 90 epochs distilled
# from version 3 (`--epochs 90 --patience 90 --teacher <version 3's folder>`): 66.54 % against
# version 3's 66.09 % on the valid carve, 13 faces of 2,872, within its noise
# (bench/results/long_runs.md).
COMPACT_RESNET_V2_EPOCHS = 200
COMPACT_RESNET_V2_RECIPE = {"optimizer": "nesterov", "learning_rate": 0.05, "lr_schedule": "cosine",
                            "warmup_epochs": 2, "label_smoothing": 0.1, "augment": True, "batch_size": 64,
                            "precision": "mixed_bfloat16", "tta": False, "epochs": COMPACT_RESNET_V2_EPOCHS,
                            "patience": COMPACT_RESNET_V2_EPOCHS, "mixup": 0.2}
COMPACT_RESNET_V2_WIDTHS = {"stem_filters": 32, "module_filters": (56, 112, 224)}

ENTRIES: Dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry("proposed_cnn", "models.proposed_cnn", "the paper's CNN (Table IV), the default"),
        ModelEntry("simple_cnn", "models.simple_cnn", "the paper's simple CNN (Table III)"),
        ModelEntry("feedforward", "models.feedforward", "the paper's feedforward network (Table II)"),
        ModelEntry("vgg_bn", "models.vgg_bn",
                   "VGG-style CNN with batch norm, augmentation, LR schedule and flip test-time augmentation",
                   train_defaults={"learning_rate": 1e-3, "lr_schedule": "plateau", "augment": True, "tta": True,
                                   "patience": 8}),
        ModelEntry("compact_resnet", "models.compact_resnet",
                   "the efficient model: a compact residual CNN; 62.3 M multiply-adds a served face (flip TTA's "
                   "two passes), 1/5.7 of the paper CNN's; version 1, shipped before compact_resnet_v2",
                   train_defaults=COMPACT_RESNET_RECIPE),
        ModelEntry("compact_resnet_v2", "models.compact_resnet",
                   "the shipped model's network: compact_resnet wider (75.7 M multiply-adds a face, one pass), "
                   "trained 200 epochs with Nesterov SGD, cosine decay, label smoothing and mixup 0.2 (version 3); "
                   "version 4, shipped, is version 3 distilled into it: --epochs 90 --patience 90 --teacher <version 3>",
                   train_defaults=COMPACT_RESNET_V2_RECIPE,
                   build_kwargs={**COMPACT_RESNET_V2_WIDTHS, "name": "compact_resnet_v2"}),
    )
}
DEFAULT_MODEL = "proposed_cnn"

# Models of the paper that are not Keras models: name -> why the pipeline cannot train them.
NOT_SERVABLE = {
    "decision_tree": "the decision tree (Table I) is a scikit-learn model and cannot be served by TF Serving; "
                     "run it from bench/: python bench/paper_tables.py table1 --models decision_tree",
}


def entry(name: str) -> ModelEntry:
    """The catalogue entry; ValueError naming the choices for an unknown or unservable model."""
    try:
        return ENTRIES[name]
    except KeyError:
        if name in NOT_SERVABLE:
            raise ValueError(NOT_SERVABLE[name]) from None
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(ENTRIES))}") from None


def train_defaults(name: str) -> Mapping[str, Any]:
    """The model's recipe; none for a model the catalogue does not list (tests register their own)."""
    found = ENTRIES.get(name)
    return found.train_defaults if found else {}
