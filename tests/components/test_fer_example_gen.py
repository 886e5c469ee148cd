"""FerExampleGen: the hand-written tf.Example encoding and the executor's outputs."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.fer_example_gen import component, parser
from components.fer_example_gen.encoding import serialize_example
from core import features

PIXELS = " ".join(str(i % 256) for i in range(features.NUM_PIXELS))


@pytest.mark.parametrize("seed", range(5))
def test_encoding_parses_back_with_protobuf(seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, features.NUM_PIXELS).astype(np.uint8)
    pixels[:3] = [0, 127, 128]  # one- and two-byte varint edges
    pixels[-1] = 255
    label = int(rng.integers(0, features.NUM_CLASSES))
    example = tf.train.Example.FromString(serialize_example(label, pixels))
    assert set(example.features.feature) == {features.PIXELS_KEY, features.LABEL_KEY}
    assert list(example.features.feature[features.LABEL_KEY].int64_list.value) == [label]
    assert list(example.features.feature[features.PIXELS_KEY].int64_list.value) == pixels.tolist()


def test_encoding_matches_tf_parsing():
    pixels = (np.arange(features.NUM_PIXELS) % 256).astype(np.uint8)
    parsed = tf.io.parse_single_example(
        serialize_example(6, pixels),
        {
            features.PIXELS_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
            features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        },
    )
    np.testing.assert_array_equal(parsed[features.PIXELS_KEY].numpy(), pixels)
    assert parsed[features.LABEL_KEY].numpy().tolist() == [6]


def _records(pattern):
    files = tf.io.gfile.glob(pattern)
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _run_executor(tmp_path, csv_text, max_reject_fraction=0.5, max_rows=None):
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "fer.csv").write_text(csv_text)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    rejects = component.FerRejects()
    rejects.uri = str(tmp_path / "rejects")
    input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="csv", pattern="*.csv")])
    exec_properties = {
        "input_base": str(data),
        "input_config": proto_utils.proto_to_json(input_config),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        component.MAX_REJECT_FRACTION_KEY: max_reject_fraction,
        component.MAX_ROWS_PER_SPLIT_KEY: max_rows,
        component.SPLIT_SEED_KEY: 42,
        component.EVAL_FRACTION_KEY: 0.1,
        component.VALIDATION_FRACTION_KEY: 0.1,
    }
    run = lambda: component.Executor().Do({}, {"examples": [examples], "rejects": [rejects]}, exec_properties)  # noqa: E731
    return run, examples, rejects


def test_executor_writes_splits_rejects_and_counts(tmp_path):
    csv_text = (
        "emotion,pixels,Usage\n"
        + f"3,{PIXELS},Training\n" * 10 + f"9,{PIXELS},Training\n"
        f"5,{PIXELS},PublicTest\n2,1 2 3,PublicTest\n"
    )
    run, examples, rejects = _run_executor(tmp_path, csv_text)
    run()
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "valid", "eval"]  # no PrivateTest
    labels = lambda split: [e.features.feature["label"].int64_list.value[0]  # noqa: E731
                            for e in _records(os.path.join(examples.uri, f"Split-{split}", "*.gz"))]
    assert labels("train") == [3] * 9 and labels("valid") == [3]  # 10 % of the class, carved from Training
    assert labels("eval") == [5]
    with open(os.path.join(rejects.uri, component.REJECTS_FILE)) as f:
        lines = f.read().splitlines()
    assert lines[0] == "file,line,reason,detail"
    assert [l.split(",")[1:3] for l in lines[1:]] == [["12", "label"], ["14", "pixel_count"]]
    summary = json.load(open(os.path.join(rejects.uri, component.SUMMARY_FILE)))
    assert (summary["rows"], summary["valid"], summary["rejected"]) == (13, 11, 2)
    assert summary["rows"] == summary["valid"] + summary["rejected"] + summary["skipped"]
    assert examples.get_int_custom_property("rejected") == 2
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_executor_fails_over_reject_threshold_after_writing_rejects(tmp_path):
    csv_text = "emotion,pixels,Usage\n" + f"3,{PIXELS},Training\n" * 10 + f"5,{PIXELS},PublicTest\n" + "8,1,Training\n"
    run, examples, rejects = _run_executor(tmp_path, csv_text, max_reject_fraction=0.05)
    with pytest.raises(parser.RejectThresholdExceeded, match="1 of 12 rows rejected") as raised:
        run()
    # Nothing is lost: TFX deletes the failed execution's outputs, so the list is kept
    # beside the artifact and the message names it and shows the first rejects.
    kept = rejects.uri + "-" + component.REJECTS_FILE
    assert f"All 1 rejected rows: {kept}" in str(raised.value)
    assert "fer.csv,13,label," in str(raised.value)
    assert open(kept).read().splitlines()[1].startswith("fer.csv,13,label,")


def test_executor_requires_train_valid_and_eval(tmp_path):
    run, _, _ = _run_executor(tmp_path / "a", f"emotion,pixels,Usage\n" + f"3,{PIXELS},Training\n" * 10)
    with pytest.raises(ValueError, match=r"no valid rows for split\(s\) \['eval'\]"):
        run()
    run, _, _ = _run_executor(tmp_path / "b", f"emotion,pixels,Usage\n" + f"3,{PIXELS},PublicTest\n")
    with pytest.raises(ValueError, match=r"no valid rows for split\(s\) \['train', 'valid'\]"):
        run()


def test_component_declares_rejects_output_and_parameters():
    gen = component.FerExampleGen(input_base="/data", file_pattern="fer.csv.gz", max_rows_per_split=10)
    assert set(gen.outputs) == {"examples", "rejects"}
    assert gen.exec_properties[component.MAX_ROWS_PER_SPLIT_KEY] == 10
    assert gen.exec_properties[component.MAX_REJECT_FRACTION_KEY] == parser.DEFAULT_MAX_REJECT_FRACTION


def test_gzip_tfrecord_writer_is_read_by_tensorflow(tmp_path):
    from components.fer_example_gen.tfrecord import GzipTFRecordWriter

    rng = np.random.default_rng(0)
    records = [rng.bytes(int(n)) for n in rng.integers(0, 5000, 700)] + [b""]  # > 1 MiB: several chunks
    path = str(tmp_path / "x.gz")
    with GzipTFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    read = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert read == records


def test_batch_encoding_gives_the_single_encodings_bytes():
    from components.fer_example_gen.encoding import serialize_examples

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (9, features.NUM_PIXELS)).astype(np.uint8)
    pixels[2] = 255  # every value two bytes
    pixels[3] = 0  # every value one byte
    labels = rng.integers(0, features.NUM_CLASSES, 9).tolist()
    assert serialize_examples(labels, pixels) == [serialize_example(l, p) for l, p in zip(labels, pixels)]
    assert serialize_examples([], np.zeros((0, features.NUM_PIXELS), np.uint8)) == []
