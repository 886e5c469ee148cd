"""FerImageGen: folders of face images -> train/valid/eval/test tf.Example TFRecords + rejects.

The image-folder twin of FerExampleGen (components/fer_example_gen/): the same spec (plus the
image options), the same outputs, the same split names and record schema, the same writer
(SplitWriters), the same publishing and checks; only the reading differs
(components/fer_image_gen/folders.py). So Transform, Trainer, Evaluator and the dashboard do
not know which one ran.

Its driver fingerprints the tree with the ingest's own walk (file count, bytes, mtimes): a
changed, added or removed image makes a re-run ingest again, an unchanged tree is a cache hit,
and a link loop, which TFX's glob-and-stat fingerprint would crash on, is just another file.
On Kubeflow the platform's own example-gen driver fingerprints the input patterns instead.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from tfx import types
from tfx.components.example_gen import driver, input_processor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.fer_example_gen import component as csv_gen
from components.fer_example_gen import parser as csv_rules
from components.fer_example_gen.encoding import serialize_examples
from components.fer_example_gen.tfrecord import SplitWriters
from components.fer_image_gen import folders
from fer_artifacts import FerRejects
from core import features, names

CROP_FACES_KEY = "crop_faces"
FACE_DETECTOR_KEY = "face_detector"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"
FINDINGS_FILE = names.DUPLICATES_FILE  # beside rejects.csv: kind,file,split,first_file,first_split
# gzip level of the TFRecords: 0 writes stored (uncompressed) gzip blocks. Deflate saves only 23 %
# of these records' bytes (varint pixels of photos) at level 1, and costs more CPU than reading,
# decoding and encoding the image together (bench/results/folder_ingest.md); TFX and tf.data
# read either as the same GZIP files.
COMPRESS_LEVEL = 0
# Patterns for the Kubeflow driver's fingerprint (no loops on object stores): every file of
# either layout, one level of subfolders included.
FINGERPRINT_PATTERNS = ("*/*", "*/*/*", "*/*/*/*")


class FerImageGenSpec(csv_gen.FerExampleGenSpec):
    PARAMETERS = {
        **csv_gen.FerExampleGenSpec.PARAMETERS,
        CROP_FACES_KEY: ExecutionParameter(type=int),
        FACE_DETECTOR_KEY: ExecutionParameter(type=str),
        MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int),
    }


def write_examples(
    root: str,
    output_dir_for_split,
    rejects_path: str,
    options: folders.IngestOptions = folders.IngestOptions(),
    detector: Optional[folders.Detector] = None,
    compresslevel: int = COMPRESS_LEVEL,
) -> Tuple[folders.IngestStats, List[str]]:
    """Reads the folder tree and writes one gzip TFRecord file per non-empty split, the
    quarantined files to `rejects_path` (file,reason,detail) and the duplicates and leaks to
    FINDINGS_FILE beside it. Returns the counts and the splits written, in SPLITS order."""
    reader = folders.FolderReader(root, options, detector, serialize_examples)  # a bad layout fails before anything is written
    writers = SplitWriters(output_dir_for_split, compresslevel)
    tf.io.gfile.makedirs(os.path.dirname(rejects_path))
    findings_path = os.path.join(os.path.dirname(rejects_path), FINDINGS_FILE)
    with tf.io.gfile.GFile(rejects_path, "w") as rejects_stream, tf.io.gfile.GFile(findings_path, "w") as found:
        rejects = csv.writer(rejects_stream, lineterminator="\n")
        rejects.writerow(["file", "reason", "detail"])
        findings = csv.writer(found, lineterminator="\n")
        findings.writerow(["kind", "file", "split", "first_file", "first_split"])
        items = iter(reader)
        try:
            for item in items:
                if isinstance(item, folders.Face):
                    writers.write(item.split, item.record)
                elif isinstance(item, folders.Quarantined):
                    rejects.writerow([item.path, item.reason, item.detail])
                else:
                    findings.writerow([item.kind, item.path, item.split, item.first_path, item.first_split])
        finally:
            items.close()  # now, not when the traceback lets go of it: it ends the decoding workers
            writers.close()
    return reader.stats, writers.splits(features.SPLITS)


def make_detector(name: str):
    from client import detectors  # OpenCV; MTCNN and BlazeFace load their own packages on first use

    return detectors.make(name)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads the folder tree under input_base; Beam arguments are accepted and not needed."""

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        rejects = artifact_utils.get_single_instance(output_dict[csv_gen.REJECTS_KEY])
        crop = bool(exec_properties.get(CROP_FACES_KEY))
        options = folders.IngestOptions(
            seed=int(exec_properties[csv_gen.SPLIT_SEED_KEY]),
            validation_fraction=float(exec_properties[csv_gen.VALIDATION_FRACTION_KEY]),
            eval_fraction=float(exec_properties[csv_gen.EVAL_FRACTION_KEY]),
            max_rows_per_split=exec_properties.get(csv_gen.MAX_ROWS_PER_SPLIT_KEY) or None,
            max_pixels=int(exec_properties[MAX_IMAGE_PIXELS_KEY]),
        )
        stats, splits = write_examples(
            root,
            lambda split: os.path.join(examples.uri, f"Split-{split}"),  # TFX split layout
            os.path.join(rejects.uri, names.REJECTS_FILE),
            options,
            make_detector(exec_properties[FACE_DETECTOR_KEY]) if crop else None,
        )
        summary = {**stats.as_dict(), "files": [root], "splits": splits, "crop_faces": crop}
        csv_gen.publish(examples, rejects, summary, exec_properties, "FerImageGen")
        csv_gen.check_outputs(stats, splits, float(exec_properties[csv_gen.MAX_REJECT_FRACTION_KEY]), root,
                              rejects.uri, "FerImageGen")


def tree_fingerprint(root: str) -> str:
    """Files, bytes and mtimes of every file the ingest reads (links followed, loops counted
    as files), order-independent as TFX's own fingerprint."""
    count = total = xor = summed = 0
    try:
        paths = list(folders.folder_files(root))
    except folders.LayoutError as e:  # the executor reports it in its own words
        return f"layout error: {e}"
    for path in paths:
        count += 1
        try:
            st = os.stat(os.path.join(root, path))
        except OSError as e:
            summed += hash(e.errno)
            continue
        total += st.st_size
        xor ^= int(st.st_mtime)
        summed += int(st.st_mtime)
    return f"split:images,num_files:{count},total_bytes:{total},xor_checksum:{xor},sum_checksum:{summed}"


class _TreeInputProcessor(input_processor.FileBasedInputProcessor):
    def resolve_span_and_version(self):
        self._fingerprint = tree_fingerprint(self._input_base_uri)
        return 0, None


class Driver(driver.FileBasedDriver):
    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        assert input_base_uri
        return _TreeInputProcessor(input_base_uri, splits, range_config)


class FerImageGen(FileBasedExampleGen):
    """Custom ExampleGen for folders of face images (components/fer_image_gen/folders.py has
    the layouts, the split rules and the quarantine). Outputs `examples` and `rejects` as
    FerExampleGen does; rejects.csv lists file,reason,detail and duplicates.csv the duplicates
    and leaks."""

    SPEC_CLASS = FerImageGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(
        self,
        input_base: str,
        max_reject_fraction: float = csv_rules.DEFAULT_MAX_REJECT_FRACTION,
        max_rows_per_split: Optional[int] = None,
        split_seed: int = csv_rules.DEFAULT_SEED,
        validation_fraction: float = csv_rules.DEFAULT_VALIDATION_FRACTION,
        eval_fraction: float = csv_rules.DEFAULT_EVAL_FRACTION,
        crop_faces: bool = False,
        face_detector: str = "haar",
        max_image_pixels: int = folders.DEFAULT_MAX_IMAGE_PIXELS,
    ):
        input_config = example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name=f"images{i}", pattern=p) for i, p in enumerate(FINGERPRINT_PATTERNS)])
        output_config = csv_gen.split_output_config()
        spec = FerImageGenSpec(
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
            crop_faces=int(bool(crop_faces)),
            face_detector=face_detector,
            max_image_pixels=int(max_image_pixels),
            examples=types.Channel(type=standard_artifacts.Examples),
            rejects=types.Channel(type=FerRejects),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
