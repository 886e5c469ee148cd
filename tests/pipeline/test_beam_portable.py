"""The portable-runner helpers and the SDK worker pool, without running a pipeline (that is
tests/e2e/test_beam_portable.py)."""

import re
import socket
import subprocess
import sys
import time

import pytest

from pipeline import beam_portable, beam_worker_pool
from tests.conftest import REPO


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_portable_args_are_recognised_as_an_external_pool():
    args = beam_portable.portable_beam_args("localhost:50000", 2)
    assert beam_portable.external_pool_address(args) == "localhost:50000"
    assert beam_portable.external_pool_address(["--runner", "PortableRunner", "--environment_type", "EXTERNAL",
                                                "--environment_config", "h:1"]) == "h:1"


@pytest.mark.parametrize("runner", ["PortableRunner", "Portable", "portable",
                                    "apache_beam.runners.portability.portable_runner.PortableRunner"])
def test_every_name_beam_gives_the_portable_runner_is_recognised(runner):
    """Beam resolves these names to its PortableRunner (runners/runner.py's create_runner), and
    the Beam options may be abbreviated as argparse allows."""
    assert beam_portable.external_pool_address([f"--runner={runner}", "--job_endpoint=embed",
                                                "--environment_type=EXTERNAL", "--environment_config=h:2"]) == "h:2"
    assert beam_portable.external_pool_address([f"--runner={runner}", "--environment_type=external",
                                                "--environment_conf=h:3"]) == "h:3"


@pytest.mark.parametrize("args", [
    [],
    ["--runner=FlinkRunner", "--environment_type=EXTERNAL", "--environment_config=localhost:50000"],
    ["--runner=PortableRunner", "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
     "--direct_num_workers=two"],  # Beam refuses these: it fails the stage itself
    ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ["--runner=PortableRunner", "--job_endpoint=flink-job-server:8099", "--environment_type=EXTERNAL",
     "--environment_config=localhost:50000"],  # a cluster's job server: its runner, not ours
    ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=DOCKER"],
])
def test_other_configurations_are_left_alone(args):
    assert beam_portable.external_pool_address(args) is None


@pytest.mark.parametrize("args, reason", [
    (["--direct_num_workers=two"], "argument --direct_num_workers: invalid int value: 'two'"),
    (["--direct_running_mode=bogus"], "argument --direct_running_mode: invalid choice: 'bogus'"),
    (["--help"], beam_portable.HELP_REFUSED),
    (["--runner=DirectRunner", "-h"], beam_portable.HELP_REFUSED),
])
def test_a_list_beam_refuses_is_its_one_line_reason_and_nothing_printed(args, reason, capsys):
    assert beam_portable.refusal(args).startswith(reason)
    assert beam_portable.given_options(args) is None
    assert capsys.readouterr() == ("", "")  # not Beam's usage


def test_beam_s_own_failures_are_one_line(monkeypatch):
    from apache_beam.options import pipeline_options

    def fails(self, **kwargs):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr(pipeline_options.PipelineOptions, "get_all_options", fails)
    assert beam_portable.refusal(["--runner=DirectRunner"]) == "RuntimeError: first line"


def test_a_list_beam_takes_is_no_refusal():
    assert beam_portable.refusal(None) is None and beam_portable.refusal([]) is None
    assert beam_portable.refusal(["--direct_running_mode=multi_processing", "--direct_num_workers=0"]) is None


def test_check_pool_names_the_address_and_the_command_when_nothing_answers():
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(beam_portable.BeamWorkerError,
                       match=rf"no Beam SDK worker pool answers at localhost:{port} .*beam-workers --port {port}"):
        beam_portable.check_pool(f"localhost:{port}", timeout_s=1)
    assert time.monotonic() - started < 5


def test_worker_environment_lets_workers_import_the_project():
    env = beam_worker_pool.worker_environment({"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":")[:2] == [REPO, "/elsewhere"]
    assert env["PATH"].split(":")[0] == sys.executable.rsplit("/", 1)[0]
    assert env["TF_USE_LEGACY_KERAS"] == "1"


def test_the_pool_starts_answers_and_stops():
    with beam_worker_pool.LocalWorkerPool(2) as pool:
        assert re.fullmatch(r"localhost:\d+", pool.address)
        beam_portable.check_pool(pool.address, timeout_s=5)
        assert f"--environment_config={pool.address}" in pool.beam_args
        assert "--sdk_worker_parallelism=2" in pool.beam_args
    with pytest.raises(beam_portable.BeamWorkerError):
        beam_portable.check_pool(pool.address, timeout_s=1)


def test_the_pool_keeps_at_most_its_workers_alive(tmp_path, monkeypatch):
    from apache_beam.portability.api import beam_fn_api_pb2, endpoints_pb2

    monkeypatch.setattr(beam_worker_pool, "SLOT_WAIT_S", 0.5)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]  # a worker that stays
    servicer = beam_worker_pool.make_servicer(1, str(tmp_path), worker_command=sleeper)

    def start(worker_id):
        return servicer.StartWorker(beam_fn_api_pb2.StartWorkerRequest(
            worker_id=worker_id, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:1")), None)

    try:
        assert start("a").error == ""
        refused = start("b")
        assert "all 1 workers of the pool are busy" in refused.error
        servicer.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="a"), None)
        deadline = time.monotonic() + 10
        while start("c").error and time.monotonic() < deadline:  # a's slot comes back when it exits
            time.sleep(0.2)
        assert (tmp_path / "worker-c.log").exists()
    finally:
        servicer.stop_all()


@pytest.mark.parametrize("argv, message", [
    (["--port", "99999"], "--port 99999: must lie in 0-65535"),
    (["--workers", "0"], "--workers 0: must be at least 1"),
])
def test_beam_workers_bad_arguments_are_one_line(argv, message):
    result = subprocess.run([sys.executable, "-m", "cli.main", "beam-workers", *argv], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {message}"


def test_beam_workers_on_a_port_in_use_is_one_line():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "cli.main", "beam-workers", "--port", str(port)],
                                capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [f"error: port {port} is in use"]


def test_the_guards_replace_beams_internals_for_the_block_only():
    from apache_beam.portability import common_urns
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    registry = worker_handlers.WorkerHandler._registered_environments
    urn = common_urns.environments.EXTERNAL.urn
    before = (local_job_service.BeamJob.__dict__["_invoke_runner"], registry[urn])
    with beam_portable.runner_guards(connect_timeout_s=3) as guards:
        assert local_job_service.BeamJob.__dict__["_invoke_runner"] is not before[0]
        assert registry[urn] is not before[1]
        assert guards.connect_timeout_s == 3 and guards.take_failures() == []
        with pytest.raises(beam_portable.BeamWorkerError, match="another pipeline run"):
            with beam_portable.runner_guards():
                pass
    assert (local_job_service.BeamJob.__dict__["_invoke_runner"], registry[urn]) == before
    with pytest.raises(RuntimeError):
        with beam_portable.runner_guards():
            raise RuntimeError("a failed run")
    assert (local_job_service.BeamJob.__dict__["_invoke_runner"], registry[urn]) == before


def test_another_beam_version_is_refused_in_one_line():
    import apache_beam

    assert apache_beam.__version__ == beam_portable.WRITTEN_FOR_BEAM  # constraints.txt's pin
    beam_portable.check_beam_version()
    with pytest.raises(beam_portable.BeamWorkerError) as raised:
        beam_portable.check_beam_version("2.60.0")
    message = str(raised.value)
    assert "\n" not in message and "2.59.0" in message and "2.60.0" in message
