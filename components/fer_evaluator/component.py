"""FerEvaluator: TFX's Evaluator, one instance per reported split.

The pipeline evaluates a candidate on PublicTest (`eval`: reported and blessed) and, when
the file has PrivateTest rows, on `test` (reported only, FerReportEvaluator). One Evaluator over both splits
would merge them into one set of metrics, so each split gets its own instance. The stock
executor fails on a split the examples do not have; which splits exist is known only once
the CSV is read, so this executor evaluates the wanted splits that exist and, when none
does, records an empty, skipped evaluation instead of failing the run.

The evaluation artifact carries the splits it measured (`example_splits`, a JSON list) so
that reports tell PublicTest and PrivateTest results apart. The report-only one
never blesses: its blessing artifact is always NOT_BLESSED, so the latest-blessed-model
resolver and the Pusher can only ever follow the `eval` evaluation.
"""

import json
import os
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.evaluator.component import Evaluator
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import json_utils

from core import names

EXAMPLE_SPLITS_PROPERTY = names.EXAMPLE_SPLITS_PROPERTY
SKIPPED_PROPERTY = names.SKIPPED_PROPERTY


def present_splits(wanted: List[str], examples: types.Artifact) -> List[str]:
    present = set(artifact_utils.decode_split_names(examples.split_names))
    return [split for split in wanted if split in present]


class Executor(evaluator_executor.Executor):
    """Evaluates the wanted splits that exist; records an empty, skipped evaluation (and no
    blessing) when none does."""

    may_bless = True

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        wanted = json_utils.loads(exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or ["eval"]
        splits = present_splits(wanted, examples)
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        evaluation.set_string_custom_property(EXAMPLE_SPLITS_PROPERTY, json.dumps(splits))
        evaluation.set_int_custom_property(SKIPPED_PROPERTY, 0 if splits else 1)
        if not splits:
            logging.info("FerEvaluator: the examples have none of the splits %s; nothing to evaluate", wanted)
            write_not_blessed(blessing)
            return
        exec_properties = {**exec_properties,
                           standard_component_specs.EXAMPLE_SPLITS_KEY: json_utils.dumps(splits)}
        super().Do(input_dict, output_dict, exec_properties)
        if not self.may_bless:
            write_not_blessed(blessing)


class ReportOnlyExecutor(Executor):
    may_bless = False


def write_not_blessed(blessing: types.Artifact) -> None:
    """Replaces whatever the stock executor wrote with a NOT_BLESSED blessing."""
    if fileio.exists(blessing.uri):
        for name in fileio.listdir(blessing.uri):
            fileio.remove(os.path.join(blessing.uri, name))
    fileio.makedirs(blessing.uri)
    with fileio.open(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), "w") as f:
        f.write("")
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE)


class FerEvaluator(Evaluator):
    """TFX's Evaluator (same arguments) over the wanted splits that exist."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)


class FerReportEvaluator(Evaluator):
    """The same, for a split that is reported and never blesses (PrivateTest)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ReportOnlyExecutor)
