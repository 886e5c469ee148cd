"""TFX packages itself for Beam workers only where the workers are not this installation."""

import pytest
from tfx.utils import dependency_utils

from pipeline import beam_dependencies, beam_portable, local_runner


@pytest.mark.parametrize("beam_args", [
    [],
    local_runner.default_beam_args(10),
    local_runner.default_beam_args(10 ** 6),
    ["--runner=DirectRunner"],
    ["--runner", "direct"],
    ["--runner=BundleBasedDirectRunner"],
    ["--runner=SwitchingDirectRunner"],
    ["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"],
    beam_portable.portable_beam_args("localhost:50000", 2),
])
def test_local_runners_run_their_workers_here(beam_args):
    assert beam_dependencies.workers_run_here(beam_args)


@pytest.mark.parametrize("beam_args", [
    ["--runner=DataflowRunner", "--project=p", "--region=r"],
    ["--runner=FlinkRunner", "--flink_master=host:8081"],
    ["--runner=PortableRunner", "--job_endpoint=host:8099"],  # a real cluster's job server
    ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=DOCKER"],
    ["--runner=DirectRunner", "--runner=SparkRunner"],  # the last --runner counts, as in Beam
    ["--runne=DataflowRunner"],  # Beam takes an abbreviated option, so this runs on Dataflow
    ["--direct_num_workers=abc"],  # Beam refuses it: nothing is assumed
])
def test_other_runners_keep_tfx_packaging_for_their_workers(beam_args):
    assert not beam_dependencies.workers_run_here(beam_args)


def test_no_package_is_built_inside_and_tfx_is_put_back_after(monkeypatch):
    built = []
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: built.append(1) or "/x.tar.gz")
    original = dependency_utils.make_beam_dependency_flags
    args = ["--direct_running_mode=in_memory"]
    with beam_dependencies.installed_dependencies():
        assert dependency_utils.make_beam_dependency_flags(list(args)) == args
    assert built == []
    assert dependency_utils.make_beam_dependency_flags is original
    # Outside, TFX's inference is back: it builds the package and names it.
    assert dependency_utils.make_beam_dependency_flags(list(args)) == args + ["--extra_package=/x.tar.gz"]
    assert built == [1]


def test_overlapping_runs_put_tfx_back_when_the_last_one_ends():
    original = dependency_utils.make_beam_dependency_flags
    outer = beam_dependencies.installed_dependencies()
    outer.__enter__()
    with beam_dependencies.installed_dependencies():
        assert dependency_utils.make_beam_dependency_flags is not original
    assert dependency_utils.make_beam_dependency_flags is not original  # the outer run still goes on
    outer.__exit__(None, None, None)
    assert dependency_utils.make_beam_dependency_flags is original


def test_tfx_is_put_back_when_the_run_fails():
    original = dependency_utils.make_beam_dependency_flags
    with pytest.raises(RuntimeError):
        with beam_dependencies.installed_dependencies():
            raise RuntimeError("the run failed")
    assert dependency_utils.make_beam_dependency_flags is original


@pytest.mark.parametrize("beam_args", [
    ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"],
    ["--direct_running_mode=in_memory"],
])
def test_direct_runner_tasks_in_the_image_name_it_as_their_workers_container(beam_args):
    assert beam_dependencies.in_pipeline_image(beam_args, "registry/fer:1") == [
        *beam_args, "--sdk_container_image=registry/fer:1"]


@pytest.mark.parametrize("beam_args", [
    ["--runner=DataflowRunner", "--project=p", "--region=r"],  # its workers are not the task's container
    ["--runner=PortableRunner", "--job_endpoint=host:8099", "--environment_type=EXTERNAL"],
    ["--extra_package=/packages/x.tar.gz"],  # the user named the dependencies
    ["--setup_file", "./setup.py"],
    ["--sdk_container_image=registry/other:2"],
    ["--direct_num_workers=abc"],  # Beam refuses it where it runs; compiling does not exit here
])
def test_other_arguments_stay_as_given(beam_args):
    assert beam_dependencies.in_pipeline_image(beam_args, "registry/fer:1") == beam_args


def test_tfx_builds_no_package_for_the_arguments_in_the_image(monkeypatch):
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: pytest.fail("TFX built its package"))
    args = beam_dependencies.in_pipeline_image(["--direct_running_mode=in_memory"], "registry/fer:1")
    assert dependency_utils.make_beam_dependency_flags(list(args)) == args
