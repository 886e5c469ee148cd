"""ClassBalance component: reads StatisticsGen output, writes the class-balance report."""

import json
import os

from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components.class_balance import logic
from fer_artifacts import ClassBalance


def load_split_counts(statistics: types.Artifact) -> dict:
    from tensorflow_data_validation import load_stats_binary

    counts = {}
    for split in artifact_utils.decode_split_names(statistics.split_names):
        stats = load_stats_binary(os.path.join(artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb"))
        counts[split] = logic.label_counts_from_stats(stats.datasets[0])
    return counts


@component
def ClassBalanceCheck(  # noqa: N802 - TFX component names are classes
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    class_balance: OutputArtifact[ClassBalance],
    min_class_share: Parameter[float] = logic.DEFAULT_MIN_SHARE,
    max_distribution_distance: Parameter[float] = logic.DEFAULT_MAX_DISTANCE,
):
    report = logic.analyze(load_split_counts(statistics), min_class_share, max_distribution_distance)
    logic.write_report(report, class_balance.uri)
    class_balance.set_int_custom_property("imbalanced", int(report["imbalanced"]))
    class_balance.set_string_custom_property("findings", json.dumps(report["findings"]))
    print(f"[ClassBalanceCheck] {logic.headline(report)}", flush=True)
    for finding in report["findings"]:
        print(f"[ClassBalanceCheck]   {finding}", flush=True)
