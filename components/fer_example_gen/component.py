"""FerExampleGen: FER CSV -> train/eval/test tf.Example TFRecords + a rejects artifact.

A FileBasedExampleGen (so it keeps TFX's file driver: span/version resolution and an input
fingerprint that makes a re-run with an unchanged CSV a cache hit, locally and on Kubeflow)
with its own spec: splits come from the Usage column, not from hash buckets, and bad rows go
to a `rejects` output instead of failing the Beam job or vanishing.

The executor is plain Python: one CSV (gzip is not splittable) is read and written at
~C speed with numpy, which a Beam job on one file could not beat (bench/ingest_bench.py).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import FileBasedExampleGenSpec
from tfx.utils import proto_utils

from components.fer_example_gen import parser
from components.fer_example_gen.encoding import serialize_example
from components.fer_example_gen.tfrecord import SplitWriters
from fer_artifacts import FerRejects
from core import features, names

REJECTS_KEY = "rejects"
MAX_REJECT_FRACTION_KEY = "max_reject_fraction"
MAX_ROWS_PER_SPLIT_KEY = "max_rows_per_split"
SPLIT_SEED_KEY = "split_seed"
EVAL_FRACTION_KEY = "eval_fraction"
VALIDATION_FRACTION_KEY = "validation_fraction"

REJECTS_FILE = names.REJECTS_FILE
SUMMARY_FILE = names.REJECTS_SUMMARY_FILE


class FerExampleGenSpec(FileBasedExampleGenSpec):
    PARAMETERS = {
        **FileBasedExampleGenSpec.PARAMETERS,
        MAX_REJECT_FRACTION_KEY: ExecutionParameter(type=float),
        MAX_ROWS_PER_SPLIT_KEY: ExecutionParameter(type=int, optional=True),
        SPLIT_SEED_KEY: ExecutionParameter(type=int),
        EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        VALIDATION_FRACTION_KEY: ExecutionParameter(type=float),
    }
    OUTPUTS = {
        **FileBasedExampleGenSpec.OUTPUTS,
        REJECTS_KEY: ChannelParameter(type=FerRejects),
    }


def write_examples(
    paths: List[str],
    output_dir_for_split,
    rejects_path: str,
    *,
    max_rows_per_split: Optional[int] = None,
    seed: int = parser.DEFAULT_SEED,
    validation_fraction: float = parser.DEFAULT_VALIDATION_FRACTION,
    eval_fraction: float = parser.DEFAULT_EVAL_FRACTION,
) -> Tuple[parser.ParseStats, List[str]]:
    """Parses the CSV files and writes one gzip TFRecord file per non-empty split.

    `output_dir_for_split(split)` gives the directory for a split. Returns the parser
    counts summed over files and the splits written, in SPLITS order. With several
    files, `max_rows_per_split` applies to each file.
    """
    writers = SplitWriters(output_dir_for_split)
    total = parser.ParseStats()
    tf.io.gfile.makedirs(os.path.dirname(rejects_path))
    with tf.io.gfile.GFile(rejects_path, "w") as rejects_stream:
        rejects = parser.RejectsWriter(rejects_stream, with_file=True)
        try:
            for path in paths:
                reader = parser.FerCsvReader(
                    path, seed=seed, validation_fraction=validation_fraction, eval_fraction=eval_fraction,
                    max_rows_per_split=max_rows_per_split,
                )
                for item in reader:
                    if isinstance(item, parser.Reject):
                        rejects.write(item, file=os.path.basename(path))
                        continue
                    writers.write(item.split, serialize_example(item.label, item.pixels))
                total.merge(reader.stats)
        finally:
            writers.close()
    return total, writers.splits(features.SPLITS)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads the matched CSV file(s); Beam arguments are accepted and not needed."""

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        paths: List[str] = []
        for split in input_config.splits:
            paths += sorted(tf.io.gfile.glob(os.path.join(input_base, split.pattern)))
        if not paths:
            raise FileNotFoundError(
                f"FerExampleGen: no file matches {[s.pattern for s in input_config.splits]} in {input_base}"
            )

        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        rejects = artifact_utils.get_single_instance(output_dict[REJECTS_KEY])
        max_rows = exec_properties.get(MAX_ROWS_PER_SPLIT_KEY) or None
        stats, splits = write_examples(
            paths,
            lambda split: os.path.join(examples.uri, f"Split-{split}"),  # TFX split layout
            os.path.join(rejects.uri, REJECTS_FILE),
            max_rows_per_split=max_rows,
            seed=int(exec_properties[SPLIT_SEED_KEY]),
            validation_fraction=float(exec_properties[VALIDATION_FRACTION_KEY]),
            eval_fraction=float(exec_properties[EVAL_FRACTION_KEY]),
        )
        summary = {**stats.as_dict(), "files": [os.path.basename(p) for p in paths], "splits": splits}
        publish(examples, rejects, summary, exec_properties, "FerExampleGen")
        check_outputs(stats, splits, float(exec_properties[MAX_REJECT_FRACTION_KEY]), ", ".join(paths), rejects.uri,
                      "FerExampleGen")


def publish(examples: types.Artifact, rejects: types.Artifact, summary: Dict[str, Any],
            exec_properties: Dict[str, Any], name: str) -> None:
    """What every ExampleGen of this project records: summary.json beside the rejects, the
    counts as custom properties of both artifacts, the split names and the formats."""
    with tf.io.gfile.GFile(os.path.join(rejects.uri, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    for a in (examples, rejects):
        for key in ("rows", "valid", "rejected", "skipped"):
            a.set_int_custom_property(key, summary[key])
    examples.split_names = artifact_utils.encode_split_names(summary["splits"])
    examples_utils.set_payload_format(
        examples,
        exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY, example_gen_pb2.FORMAT_TF_EXAMPLE),
    )
    examples_utils.set_file_format(examples, "tfrecords_gzip")
    logging.info("%s: %s", name, json.dumps(summary, sort_keys=True))


def check_outputs(stats: parser.ParseStats, splits: List[str], max_reject_fraction: float, source: str,
                  rejects_uri: str, name: str) -> None:
    """The checks every ExampleGen of this project ends with: train, valid and eval written,
    and no more rejects than the limit (the rejects list then outlives the failed run)."""
    missing = [s for s in (features.TRAIN_SPLIT, features.VALID_SPLIT, features.EVAL_SPLIT) if s not in splits]
    if missing:
        raise ValueError(f"{name}: no valid rows for split(s) {missing} in {source}")
    try:
        stats.check_threshold(max_reject_fraction, source=source)
    except parser.RejectThresholdExceeded as e:
        raise parser.RejectThresholdExceeded(f"{e}\n{_keep_rejects_of_failed_run(rejects_uri)}") from None


def _keep_rejects_of_failed_run(rejects_uri: str, shown: int = 5) -> str:
    """TFX deletes a failed execution's output directories, the rejects artifact included.
    Copy the list beside it so that it outlives the failure; return a message naming it
    with the first rejects."""
    source = os.path.join(rejects_uri, REJECTS_FILE)
    kept = rejects_uri.rstrip("/") + "-" + REJECTS_FILE
    tf.io.gfile.copy(source, kept, overwrite=True)
    with tf.io.gfile.GFile(source) as f:
        lines = f.read().splitlines()
    first = "\n".join(f"  {line}" for line in lines[1 : shown + 1])
    return f"All {len(lines) - 1} rejected rows: {kept}\nFirst ones ({lines[0]}):\n{first}"


def split_output_config() -> example_gen_pb2.Output:
    """The output config of both ExampleGens: it only documents the possible splits; the
    executors assign rows by their own rules and list the non-empty ones on the artifact."""
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=s, hash_buckets=1) for s in features.SPLITS]))


class FerExampleGen(FileBasedExampleGen):
    """Custom ExampleGen for FER-2013 CSVs (`emotion,pixels[,Usage]`, plain or .gz).

    Outputs `examples` (splits from Usage: Training -> train + a seeded, stratified `valid`
    carve, PublicTest -> eval, PrivateTest -> test; a seeded, stratified 80/10/10
    train/valid/eval without a Usage column; empty splits are not listed) and `rejects`.
    """

    SPEC_CLASS = FerExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str,
        file_pattern: str = "*.csv*",
        max_reject_fraction: float = parser.DEFAULT_MAX_REJECT_FRACTION,
        max_rows_per_split: Optional[int] = None,
        split_seed: int = parser.DEFAULT_SEED,
        validation_fraction: float = parser.DEFAULT_VALIDATION_FRACTION,
        eval_fraction: float = parser.DEFAULT_EVAL_FRACTION,
    ):
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="csv", pattern=file_pattern)])
        output_config = split_output_config()
        spec = FerExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            max_reject_fraction=float(max_reject_fraction),
            max_rows_per_split=max_rows_per_split,
            split_seed=int(split_seed),
            validation_fraction=float(validation_fraction),
            eval_fraction=float(eval_fraction),
            examples=types.Channel(type=standard_artifacts.Examples),
            rejects=types.Channel(type=FerRejects),
        )
        # FileBasedExampleGen.__init__ would build its own (smaller) spec.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
