"""The pipeline's Beam stages under a non-default Beam configuration (two DirectRunner
workers in multi_processing mode, as `--beam-arg` passes it) give the same outputs as the
default (in_memory at this size)."""

import io
import os

import pytest
from tfx.utils import dependency_utils

from pipeline import local_runner
from pipeline.options import PipelineOptions
from tests.e2e import beam_outputs

pytestmark = pytest.mark.e2e

NON_DEFAULT = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.fixture(scope="module")
def two_runs(demo_csv, direct_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("multi_processing"))
    stream = io.StringIO()
    packages = []  # TFX's ephemeral package of itself, for workers that lack TFX
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dependency_utils, "build_ephemeral_package", lambda: packages.append(1) or "/nowhere.tar.gz")
        local_runner.run(demo_csv, out, PipelineOptions(beam_args=tuple(NON_DEFAULT), enable_training=False),
                         stream=stream)
    return {"default": direct_run, "multi_processing": (os.path.join(out, "pipeline_root"), stream.getvalue()),
            "packages_built": packages}


def test_no_tfx_package_is_built_for_workers_that_run_here(two_runs):
    assert two_runs["packages_built"] == []


def test_each_run_used_its_beam_configuration(two_runs):
    assert "Beam: --direct_running_mode=in_memory --direct_num_workers=1" in two_runs["default"][1]
    assert "Beam: " + " ".join(NON_DEFAULT) in two_runs["multi_processing"][1]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_transformed_examples(two_runs, split):
    default, other = two_runs["default"][0], two_runs["multi_processing"][0]
    records = beam_outputs.transformed_records(default, split)
    assert len(records) > 0
    assert records == beam_outputs.transformed_records(other, split)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_statistics(two_runs, split):
    beam_outputs.assert_same_statistics(two_runs["default"][0], two_runs["multi_processing"][0], split)


def test_same_transform_output_schema(two_runs):
    schemas = [beam_outputs.transform_output_schema(two_runs[run][0]) for run in ("default", "multi_processing")]
    assert schemas[0] == schemas[1]
