"""FerImageGen: the executor's outputs, its checks, its fingerprint, and the equality with the
CSV path (the same faces as a CSV and as a folder tree give the same examples)."""

import csv
import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.fer_example_gen import component as csv_gen
from components.fer_example_gen import parser
from components.fer_image_gen import component, folders, images
from core import features, names
from tests.components.test_fer_image_gen_folders import make_bad_tree
from tools import demo_data


def records(directory):
    files = tf.io.gfile.glob(os.path.join(directory, "*.gz"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def run_executor(tmp_path, root, max_reject_fraction=0.5, **extra):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    rejects = csv_gen.FerRejects()
    rejects.uri = str(tmp_path / "rejects")
    exec_properties = {
        "input_base": str(root),
        "output_data_format": 6,  # FORMAT_TF_EXAMPLE
        csv_gen.MAX_REJECT_FRACTION_KEY: max_reject_fraction,
        csv_gen.MAX_ROWS_PER_SPLIT_KEY: None,
        csv_gen.SPLIT_SEED_KEY: 42,
        csv_gen.EVAL_FRACTION_KEY: 0.1,
        csv_gen.VALIDATION_FRACTION_KEY: 0.1,
        component.CROP_FACES_KEY: 0,
        component.FACE_DETECTOR_KEY: "haar",
        component.MAX_IMAGE_PIXELS_KEY: images.DEFAULT_MAX_IMAGE_PIXELS,
        **extra,
    }
    run = lambda: component.Executor().Do({}, {"examples": [examples], "rejects": [rejects]}, exec_properties)  # noqa: E731
    return run, examples, rejects


def test_executor_writes_splits_quarantine_findings_and_counts(tmp_path):
    root = tmp_path / "data"
    bad = make_bad_tree(root)
    run, examples, rejects = run_executor(tmp_path, root)
    run()
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "valid", "eval", "test"]
    summary = json.load(open(os.path.join(rejects.uri, names.REJECTS_SUMMARY_FILE)))
    written = {s: len(records(os.path.join(examples.uri, f"Split-{s}"))) for s in features.SPLITS}
    assert written == summary["by_split"] and sum(written.values()) == summary["valid"] == 40
    assert summary["rows"] == summary["valid"] + summary["rejected"] == 40 + len(bad)
    with open(os.path.join(rejects.uri, names.REJECTS_FILE)) as f:
        listed = {row["file"]: row["reason"] for row in csv.DictReader(f)}
    assert listed == bad
    with open(os.path.join(rejects.uri, component.FINDINGS_FILE)) as f:
        assert next(csv.reader(f)) == ["kind", "file", "split", "first_file", "first_split"]
    assert examples.get_int_custom_property("rejected") == len(bad)
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    example = tf.train.Example.FromString(records(os.path.join(examples.uri, "Split-train"))[0])
    assert set(example.features.feature) == {features.PIXELS_KEY, features.LABEL_KEY}  # the CSV's schema
    assert len(example.features.feature[features.PIXELS_KEY].int64_list.value) == features.NUM_PIXELS


def test_reject_limit_fails_the_run_and_keeps_the_list(tmp_path):
    root = tmp_path / "data"
    bad = make_bad_tree(root)
    run, _, rejects = run_executor(tmp_path, root, max_reject_fraction=0.01)
    with pytest.raises(parser.RejectThresholdExceeded, match=f"{len(bad)} of {40 + len(bad)} rows rejected") as e:
        run()
    kept = rejects.uri + "-" + names.REJECTS_FILE
    assert f"All {len(bad)} rejected rows: {kept}" in str(e.value)
    assert "First ones (file,reason,detail)" in str(e.value)
    assert len(open(kept).read().splitlines()) == len(bad) + 1


def test_a_bad_layout_is_one_line_before_anything_is_written(tmp_path):
    (tmp_path / "data" / "train" / "bored").mkdir(parents=True)
    run, examples, _ = run_executor(tmp_path, tmp_path / "data")
    with pytest.raises(folders.LayoutError, match="bored"):
        run()
    assert not os.path.exists(examples.uri)


@pytest.mark.parametrize("with_usage", [True, False])
def test_the_same_faces_as_csv_and_as_folders_give_identical_examples(tmp_path, with_usage):
    """Pixels, labels and split membership: every split's records are byte for byte the
    CSV path's, in the same order."""
    rows, seed = 400, 11
    csv_path = str(tmp_path / "faces.csv")
    demo_data.write_demo_file(csv_path, rows, seed=seed, with_usage=with_usage)
    demo_data.write_demo_tree(str(tmp_path / "tree"), rows, seed=seed, with_usage=with_usage)
    csv_out, tree_out = tmp_path / "csv_out", tmp_path / "tree_out"
    csv_stats, csv_splits = csv_gen.write_examples(
        [csv_path], lambda s: str(csv_out / s), str(csv_out / names.REJECTS_FILE))
    tree_stats, tree_splits = component.write_examples(
        str(tmp_path / "tree"), lambda s: str(tree_out / s), str(tree_out / names.REJECTS_FILE))
    assert csv_splits == tree_splits == (["train", "valid", "eval", "test"] if with_usage
                                         else ["train", "valid", "eval"])
    assert csv_stats.by_split == tree_stats.by_split and tree_stats.valid == rows
    for split in csv_splits:
        from_csv, from_tree = records(str(csv_out / split)), records(str(tree_out / split))
        assert len(from_csv) > 0 and from_csv == from_tree, split
    # The test can fail: another seed carves another valid split.
    other = tmp_path / "other"
    component.write_examples(str(tmp_path / "tree"), lambda s: str(other / s), str(other / names.REJECTS_FILE),
                             folders.IngestOptions(seed=7))
    assert records(str(other / "valid")) != records(str(csv_out / "valid"))


def test_fingerprint_changes_with_a_changed_image_and_survives_a_link_loop(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 30, seed=8)
    first = component.tree_fingerprint(str(tmp_path))
    assert component.tree_fingerprint(str(tmp_path)) == first
    os.symlink("b.png", tmp_path / "train" / "happy" / "a.png")
    os.symlink("a.png", tmp_path / "train" / "happy" / "b.png")
    looped = component.tree_fingerprint(str(tmp_path))
    assert looped != first and "num_files:32" in looped
    target = sorted((tmp_path / "train" / "sad").glob("*.png"))[0]
    target.write_bytes(target.read_bytes() + b"\0")
    assert component.tree_fingerprint(str(tmp_path)) != looped


def test_component_declares_outputs_and_parameters():
    gen = component.FerImageGen(input_base="/data", crop_faces=True, face_detector="mtcnn", max_rows_per_split=10)
    assert set(gen.outputs) == {"examples", "rejects"}
    assert gen.exec_properties[component.CROP_FACES_KEY] == 1
    assert gen.exec_properties[component.FACE_DETECTOR_KEY] == "mtcnn"
    assert gen.exec_properties[csv_gen.MAX_ROWS_PER_SPLIT_KEY] == 10
    assert gen.DRIVER_CLASS is component.Driver


def test_duplicates_and_leaks_match_a_brute_force_reference_and_leave_no_index_behind(tmp_path, monkeypatch):
    """The on-disk duplicate index (folders._FileIndex) against the definition, on a tree with
    chains of copies within and across splits and the same faces in another file format."""
    import random
    import shutil
    import tempfile

    import cv2

    root = tmp_path / "data"
    demo_data.write_demo_tree(str(root), 150, seed=3)
    originals = sorted(root.rglob("*.png"))
    rng = random.Random(0)
    for i in range(30):
        source = rng.choice(originals)
        folder = root / rng.choice(["train", "val", "test"]) / source.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / f"copy{i:02d}.png")  # the same content
        assert cv2.imwrite(str(folder / f"face{i:02d}.bmp"), cv2.imread(str(source), cv2.IMREAD_GRAYSCALE))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    reader = folders.FolderReader(str(root))
    items = list(reader)
    faces = [i for i in items if isinstance(i, folders.Face)]
    found = [(f.kind, f.path, f.split, f.first_path, f.first_split) for f in items if isinstance(f, folders.Finding)]
    expected, first_content, first_training_face = [], {}, {}
    for face in faces:  # walk order; Training comes first
        content = (root / face.path).read_bytes()
        if content in first_content:
            first = first_content[content]
            expected.append(("duplicate", face.path, face.split, first.path, first.split))
        first_content.setdefault(content, face)
        pixels = face.pixels.tobytes()
        if face.split in ("eval", "test"):
            if pixels in first_training_face:
                first = first_training_face[pixels]
                expected.append(("leak", face.path, face.split, first.path, first.split))
        else:
            first_training_face.setdefault(pixels, face)
    assert found == expected
    assert (reader.stats.duplicates, reader.stats.leaks) == (
        sum(k == "duplicate" for k, *_ in expected), sum(k == "leak" for k, *_ in expected))
    assert reader.stats.duplicates >= 20 and reader.stats.leaks >= 10
    assert list(scratch.iterdir()) == []
    stopped = iter(folders.FolderReader(str(root)))  # a reader left half-way removes its index too
    next(stopped)
    assert len(list(scratch.iterdir())) == 1
    stopped.close()
    assert list(scratch.iterdir()) == []


def test_a_png_cut_inside_its_header_is_quarantined_not_a_crash(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 20, seed=2)
    first = sorted((tmp_path / "train").rglob("*.png"))[0]
    cut = first.parent / "cut.png"
    cut.write_bytes(first.read_bytes()[:24])  # the signature and IHDR's size, not its colour type
    stats = folders.scan(str(tmp_path))
    assert stats.by_reason[images.CORRUPT] == 1 and stats.rows == 21
