"""Reads the Beam stages' outputs of a run for comparison across Beam configurations."""

import glob
import os

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2


def one(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def transformed_records(root, split):
    """Sorted (label, image values) of the transformed examples. Compared decoded: two runs
    serialize equal Examples to different bytes (feature-map order is not fixed)."""
    files = sorted(glob.glob(os.path.join(root, "Transform", "transformed_examples", "*", f"Split-{split}", "*.gz")))
    assert files
    records = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature
        records.append((tuple(feature["label"].int64_list.value), tuple(feature["image"].float_list.value)))
    return sorted(records)


def statistics(root, split):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(one(os.path.join(root, "StatisticsGen", "statistics", "*", f"Split-{split}", "FeatureStats.pb")), "rb") as f:
        stats.ParseFromString(f.read())
    dataset = stats.datasets[0]
    return dataset.num_examples, {f.path.step[0]: f for f in dataset.features}


def assert_same_statistics(root_a, root_b, split):
    (n_a, a), (n_b, b) = statistics(root_a, split), statistics(root_b, split)
    assert n_a == n_b > 0
    assert set(a) == set(b) == {"pixels", "label"}
    # label is categorical (schema/): its per-class counts; pixels: numeric summaries.
    counts = [sorted((v.value, v.frequency) for v in f["label"].string_stats.top_values) for f in (a, b)]
    assert counts[0] == counts[1] and sum(c for _, c in counts[0]) == n_a
    x, y = a["pixels"].num_stats, b["pixels"].num_stats
    assert (x.min, x.max, x.num_zeros, x.common_stats.num_non_missing) == \
        (y.min, y.max, y.num_zeros, y.common_stats.num_non_missing)
    assert x.mean == pytest.approx(y.mean, rel=1e-9) and x.std_dev == pytest.approx(y.std_dev, rel=1e-6)


def transform_output_schema(root):
    with open(one(os.path.join(root, "Transform", "transform_graph", "*", "transformed_metadata", "schema.pbtxt"))) as f:
        return f.read()


def overall_metrics(root, node_id="Evaluator"):
    """{metric name (class id): value} of the overall slice of the node's TFMA evaluation."""
    import tensorflow_model_analysis as tfma

    found = {}
    for record in tfma.load_metrics(one(os.path.join(root, node_id, "evaluation", "*"))):
        if record.slice_key.single_slice_keys:
            continue
        for item in record.metric_keys_and_values:
            if item.value.HasField("double_value") and not item.key.model_name and not item.key.is_diff:
                class_id = item.key.sub_key.class_id.value if item.key.sub_key.HasField("class_id") else None
                found[(item.key.name, class_id)] = item.value.double_value.value
    return found


def evaluate_again(output_dir, beam_args, destination, node_id="Evaluator"):
    """Runs the node's Evaluator executor again on the same model and examples (read back from
    the run's MLMD) under `beam_args`, writing to `destination`; returns the new root to give
    `overall_metrics`. Two runs train different models (their shards differ in order), so this
    is how one model is evaluated by two runners."""
    from tfx.dsl.components.base import base_beam_executor
    from tfx.orchestration import metadata
    from tfx.orchestration.portable.mlmd import execution_lib

    from components.fer_evaluator.component import Executor
    from pipeline import beam_dependencies, configs

    connection = metadata.sqlite_metadata_connection_config(configs.metadata_path(output_dir))
    with metadata.Metadata(connection) as m:
        context = m.store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node_id}")
        execution = max(m.store.get_executions_by_context(context.id), key=lambda e: e.id)
        inputs = execution_lib.get_input_artifacts(m, execution.id)
        outputs = execution_lib.get_output_artifacts(m, execution.id)
    properties = {k: getattr(v, v.WhichOneof("value")) for k, v in execution.custom_properties.items()
                  if not k.startswith("__")}
    properties.setdefault("current_component_id", node_id)
    for key, artifacts in outputs.items():
        for artifact in artifacts:
            artifact.uri = os.path.join(destination, node_id, key, "1")
            os.makedirs(artifact.uri, exist_ok=True)
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=beam_args, tmp_dir=os.path.join(destination, "tmp"), unique_id="again")
    with beam_dependencies.installed_dependencies():  # as fer-pipeline run: its workers run here
        Executor(context).Do(inputs, outputs, properties)
    return destination
