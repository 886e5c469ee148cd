"""The pipeline's Beam stages through Beam's portability layer, as a Flink, Spark or Dataflow
cluster runs them: the portable runner's embedded job service and an EXTERNAL environment,
a 2-process SDK worker pool (pipeline/beam_worker_pool.py) that this module starts and stops.
The outputs must equal the DirectRunner run's; a pool or worker failure must fail the run
with a clear error in bounded time."""

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline import beam_portable, local_runner
from pipeline.options import PipelineOptions, TrainingOptions
from pipeline.beam_worker_pool import LocalWorkerPool
from tests.conftest import REPO
from tests.e2e import beam_outputs

pytestmark = pytest.mark.e2e

WORKERS = 2
TRAINING = TrainingOptions(model="simple_cnn", epochs=2, batch_size=32, learning_rate=0.001)
BEAM_STAGES = ("StatisticsGen", "Transform", "Evaluator")
_EXITED = re.compile(r"worker (\S+) \(pid (\d+)\) exited (-?\d+) after ([\d.]+) s, cpu ([\d.]+) s")


@pytest.fixture(scope="module")
def portable_run(demo_csv, tmp_path_factory):
    """The same pipeline as `direct_run`, its Beam stages in the pool: (pipeline_root,
    console output, pool log, environments the coordinator's runner started workers for)."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    created = []
    real_create = worker_handlers.WorkerHandler.create.__func__

    def spy(cls, environment, *args):
        created.append(environment.urn)
        return real_create(cls, environment, *args)

    out = str(tmp_path_factory.mktemp("portable"))
    stream = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_handlers.WorkerHandler, "create", classmethod(spy))
        with LocalWorkerPool(WORKERS, log_dir=str(tmp_path_factory.mktemp("pool"))) as pool:
            local_runner.run(demo_csv, out, PipelineOptions(
                training=TRAINING, beam_args=tuple(pool.beam_args), accuracy_lower_bound=0.0), stream=stream)
            time.sleep(3)  # lets the last job's workers exit and the pool log them
        log = pool.log()
    return os.path.join(out, "pipeline_root"), stream.getvalue(), log, created, out


def test_the_run_used_the_portable_runner_and_the_pool(portable_run):
    _, console, log, *_ = portable_run
    assert "Beam: --runner=PortableRunner --job_endpoint=embed --environment_type=EXTERNAL" in console
    for stage in BEAM_STAGES:
        assert re.search(rf"^<== {stage} \[[\d.]+s\]", console, re.M), console


def test_the_work_ran_in_the_pools_processes_not_in_the_coordinator(portable_run):
    from apache_beam.portability import common_urns

    _, _, log, created, _ = portable_run
    # The coordinator's runner only ever asked for external workers: no in-process one.
    assert created and set(created) == {common_urns.environments.EXTERNAL.urn}
    exits = _EXITED.findall(log)
    pids = {pid for _, pid, _, _, _ in exits}
    assert len(pids) >= 2 * len(BEAM_STAGES), log  # WORKERS workers per Beam job at least
    assert os.getpid() not in {int(p) for p in pids}
    assert all(code == "0" for _, _, code, _, _ in exits), log
    # They did the work: seconds of CPU each, not just a start-up.
    assert sum(float(cpu) for *_, cpu in exits) > 10, log


def test_the_pool_ran_its_workers_side_by_side(portable_run):
    _, _, log, *_ = portable_run
    live, most = 0, 0
    for line in log.splitlines():
        if " started: pid " in line:
            live += 1
            most = max(most, live)
        elif _EXITED.search(line):
            live -= 1
    assert most == WORKERS, log


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_statistics_as_the_direct_runner(direct_run, portable_run, split):
    beam_outputs.assert_same_statistics(direct_run[0], portable_run[0], split)


@pytest.mark.parametrize("split", ["train", "valid", "eval"])
def test_same_transformed_examples_as_the_direct_runner(direct_run, portable_run, split):
    records = beam_outputs.transformed_records(direct_run[0], split)
    assert records and records == beam_outputs.transformed_records(portable_run[0], split)


def test_same_tfma_metrics_as_the_direct_runner(portable_run, tmp_path):
    """The run's model, evaluated again by the same Evaluator executor on the DirectRunner."""
    direct = beam_outputs.overall_metrics(
        beam_outputs.evaluate_again(portable_run[4], ["--runner=DirectRunner"], str(tmp_path)))
    portable = beam_outputs.overall_metrics(portable_run[0])
    assert ("sparse_categorical_accuracy", None) in direct and direct[("example_count", None)] == 30
    assert set(direct) == set(portable)
    for key, value in direct.items():  # sums in another order: float rounding only
        assert portable[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key


@pytest.fixture
def short_connect_timeout(monkeypatch):
    monkeypatch.setattr(beam_portable, "DEFAULT_CONNECT_TIMEOUT_S", 10)
    yield 10


def _run_failing(demo_csv, tmp_path, beam_args):
    started = time.monotonic()
    with pytest.raises(beam_portable.BeamWorkerError) as raised:
        local_runner.run(demo_csv, str(tmp_path / "out"), PipelineOptions(beam_args=tuple(beam_args),
                         enable_training=False), stream=io.StringIO())
    return str(raised.value), time.monotonic() - started


def test_no_pool_fails_the_run_at_once_in_one_line(demo_csv, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    args = beam_portable.portable_beam_args(f"localhost:{port}", WORKERS)
    result = subprocess.run([sys.executable, "-m", "cli.main", "run", "--data", demo_csv, "--output",
                             str(tmp_path / "cli"), *[f"--beam-arg={a}" for a in args]],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"no Beam SDK worker pool answers at localhost:{port}" in errors[0], result.stderr
    assert "fer-pipeline beam-workers" in errors[0]


def test_a_worker_that_dies_on_start_up_fails_the_run_within_the_connect_timeout(
        demo_csv, tmp_path, short_connect_timeout):
    with LocalWorkerPool(WORKERS, log_dir=str(tmp_path / "pool"), worker_command=["/bin/false"]) as pool:
        message, seconds = _run_failing(demo_csv, tmp_path, pool.beam_args)
        log = pool.log()
    assert "did not connect within 10 s" in message and "worker pool's log" in message
    assert seconds < 120
    assert re.search(r"ERROR worker \S+ \(pid \d+\) exited 1 ", log), log


def _connected_live_worker(pool_log, run_dir):
    """The pid of a worker that has connected to the runner (the run's log) and not exited
    (the pool's log), or None."""
    import glob

    run_log = "".join(open(p).read() for p in glob.glob(os.path.join(run_dir, "logs", "*.log")))
    connected = re.findall(r"pipeline\.beam_portable: Beam SDK worker (\S+) connected", run_log)
    pids = dict(re.findall(r"INFO worker (\S+) started: pid (\d+)", pool_log))
    exited = {pid for _, pid, *_ in _EXITED.findall(pool_log)}
    live = [int(pids[w]) for w in connected if w in pids and pids[w] not in exited]
    return live[0] if live else None


def test_a_worker_killed_during_a_bundle_fails_the_run_at_once(demo_csv, tmp_path):
    killed = {}
    with LocalWorkerPool(WORKERS, log_dir=str(tmp_path / "pool")) as pool:
        def kill_a_working_worker():
            # A worker's first bundle takes seconds (it imports TFDV on its first element):
            # shortly after it connects it is inside that bundle.
            while "pid" not in killed:
                pid = _connected_live_worker(pool.log(), str(tmp_path / "out"))
                if pid:
                    time.sleep(1.5)
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed["pid"], killed["at"] = pid, time.monotonic()
                    except ProcessLookupError:  # it finished first: try the next one
                        pass
                time.sleep(0.2)

        threading.Thread(target=kill_a_working_worker, daemon=True).start()
        message, _ = _run_failing(demo_csv, tmp_path, pool.beam_args)
        failed_after_kill = time.monotonic() - killed["at"]
        time.sleep(1)
        log = pool.log()
    assert re.search(r"Beam SDK worker \S+ (closed|lost) its control stream", message), message
    assert failed_after_kill < 30
    assert re.search(rf"ERROR worker \S+ \(pid {killed['pid']}\) exited -9 ", log), log


def test_a_pool_that_cannot_start_workers_fails_the_run_at_once(demo_csv, tmp_path):
    with LocalWorkerPool(WORKERS, log_dir=str(tmp_path / "pool"), worker_command=["/no/such/python"]) as pool:
        message, seconds = _run_failing(demo_csv, tmp_path, pool.beam_args)
    assert f"the worker pool at {pool.address} could not start a worker" in message
    assert "cannot start /no/such/python" in message
    assert seconds < 120
