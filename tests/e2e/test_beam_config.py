"""The pipeline's Beam stages under a non-default Beam configuration (two DirectRunner
workers in multi_processing mode, as `--beam-arg` passes it) give the same outputs as the
default (in_memory at this size)."""

import glob
import io
import os

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline import local_runner

pytestmark = pytest.mark.e2e

NON_DEFAULT = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _one(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def _records(root, split):
    """Sorted (label, image values) of the transformed examples. Compared decoded: the two
    runs serialize equal Examples to different bytes (feature-map order is not fixed)."""
    files = sorted(glob.glob(os.path.join(root, "Transform", "transformed_examples", "*", f"Split-{split}", "*.gz")))
    assert files
    records = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature
        records.append((tuple(feature["label"].int64_list.value), tuple(feature["image"].float_list.value)))
    return sorted(records)


def _stats(root, split):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(_one(os.path.join(root, "StatisticsGen", "statistics", "*", f"Split-{split}", "FeatureStats.pb")), "rb") as f:
        stats.ParseFromString(f.read())
    dataset = stats.datasets[0]
    return dataset.num_examples, {f.path.step[0]: f for f in dataset.features}


@pytest.fixture(scope="module")
def two_runs(demo_csv, tmp_path_factory):
    results = {}
    for name, beam_args in (("default", None), ("multi_processing", NON_DEFAULT)):
        out = str(tmp_path_factory.mktemp(name))
        stream = io.StringIO()
        local_runner.run(demo_csv, out, beam_args=beam_args, enable_training=False, stream=stream)
        results[name] = (os.path.join(out, "pipeline_root"), stream.getvalue())
    return results


def test_each_run_used_its_beam_configuration(two_runs):
    assert "Beam: --direct_running_mode=in_memory --direct_num_workers=1" in two_runs["default"][1]
    assert "Beam: " + " ".join(NON_DEFAULT) in two_runs["multi_processing"][1]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_transformed_examples(two_runs, split):
    default, other = two_runs["default"][0], two_runs["multi_processing"][0]
    records = _records(default, split)
    assert len(records) > 0
    assert records == _records(other, split)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_statistics(two_runs, split):
    (n_default, default), (n_other, other) = (_stats(two_runs[k][0], split) for k in ("default", "multi_processing"))
    assert n_default == n_other > 0
    assert set(default) == set(other) == {"pixels", "label"}
    # label is categorical (schema/): its per-class counts; pixels: numeric summaries.
    counts = [sorted((v.value, v.frequency) for v in f["label"].string_stats.top_values) for f in (default, other)]
    assert counts[0] == counts[1] and sum(c for _, c in counts[0]) == n_default
    a, b = default["pixels"].num_stats, other["pixels"].num_stats
    assert (a.min, a.max, a.num_zeros, a.common_stats.num_non_missing) == \
        (b.min, b.max, b.num_zeros, b.common_stats.num_non_missing)
    assert a.mean == pytest.approx(b.mean, rel=1e-9) and a.std_dev == pytest.approx(b.std_dev, rel=1e-6)


def test_same_transform_output_schema(two_runs):
    schemas = [open(_one(os.path.join(root, "Transform", "transform_graph", "*", "transformed_metadata",
                                      "schema.pbtxt"))).read() for root, _ in two_runs.values()]
    assert schemas[0] == schemas[1]
