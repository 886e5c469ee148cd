"""The pipeline's Beam stages through Beam's portability layer, as Flink, Spark and Dataflow
Runner v2 run them: the pipeline goes to a job service as a proto, and user functions run in
separate SDK worker processes (the EXTERNAL environment) that import the project themselves.

    fer-pipeline beam-workers --port 50000 --workers 2      # the pool (pipeline/beam_worker_pool.py)
    fer-pipeline run --data ... --beam-arg=--runner=PortableRunner --beam-arg=--job_endpoint=embed \\
        --beam-arg=--environment_type=EXTERNAL --beam-arg=--environment_config=localhost:50000 \\
        --beam-arg=--sdk_worker_parallelism=2

Here the job service is Beam's embedded one (`--job_endpoint=embed`: the FnApiRunner in the
coordinator process). Three of its behaviours would make this path either useless or a hang, so
`runner_guards()` changes them, in the coordinator only and for the duration of one run
(written for apache-beam 2.59.0, WRITTEN_FOR_BEAM; another version is refused in one line):

1. It starts one SDK worker per job whatever the options say: the embedded job service builds
   its FnApiRunner without reading the parallelism. The guard honours
   `--sdk_worker_parallelism`, the option Flink and Spark read for the same purpose.
2. A worker that dies hangs the job forever: the control stream's reader thread dies with
   the stream, and the bundle waits for a response that never comes. The guard answers every
   pending instruction, and any sent to that worker later, with an error response, which
   fails the bundle the way a worker-reported error does.
3. A worker that never connects (a bad interpreter, a failing import) also hangs the job. The
   guard gives it `connect_timeout_s`, then fails its instructions the same way, as the Java
   runners' external environment fails after its own timeout.

These are Beam internals (private attributes of the FnApiRunner's worker handlers): the guards
replace two of them on entry and put Beam's own back on exit, and a test runs each failure
against the installed Beam, so an upgrade that moves them fails there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

WRITTEN_FOR_BEAM = "2.59.0"  # the Beam whose internals the guards replace (constraints.txt pins it)
DEFAULT_CONNECT_TIMEOUT_S = 60.0
POOL_CHECK_TIMEOUT_S = 5.0

_active = threading.Lock()  # the guards replace process-wide Beam state: one run at a time
_LOGGER = logging.getLogger(__name__)


class BeamWorkerError(RuntimeError):
    """The SDK worker pool or one of its workers failed; the message says which and why."""


def portable_beam_args(pool_address: str, workers: int) -> List[str]:
    """The Beam arguments that send the Beam stages to the worker pool at `pool_address`."""
    return ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
            f"--environment_config={pool_address}", f"--sdk_worker_parallelism={workers}"]


HELP_REFUSED = "-h/--help asks for Beam's usage, which is no pipeline option"


class _Refused(Exception):
    """Beam's argument parser refused the list; the message is its reason."""


def _raise_instead_of_exiting(parser) -> None:
    """Beam's argument parser, made to raise its reason instead of printing its whole usage
    (hundreds of lines) and exiting; what Beam itself lets pass (ambiguous abbreviations) still
    passes. For -h/--help, which would print Beam's help and exit 0, likewise."""
    beam_error = parser.error

    def error(message):
        if message.startswith("ambiguous option: "):  # Beam ignores these (its _BeamArgumentParser)
            return beam_error(message)
        raise _Refused(message)

    def exit(status=0, message=None):
        raise _Refused(HELP_REFUSED)

    parser.error, parser.exit, parser.print_help = error, exit, lambda file=None: None


def _parse(beam_args: List[str]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(the options as Beam parses them, None) or (None, Beam's reason for refusing them)."""
    from apache_beam.options import pipeline_options

    # PipelineOptions' own parser, which no hook reaches, prints the help for -h, --help and
    # its abbreviations and exits.
    if any(arg == "-h" or "--help".startswith(arg.split("=", 1)[0]) and len(arg.split("=", 1)[0]) > 2
           for arg in beam_args):
        return None, HELP_REFUSED
    try:
        options = pipeline_options.PipelineOptions(flags=list(beam_args))
        return options.get_all_options(add_extra_args_fn=_raise_instead_of_exiting), None
    except _Refused as e:
        return None, str(e)
    except SystemExit:  # an exit our hook did not reach
        return None, "Beam's argument parser exits on them"
    except Exception as e:  # noqa: BLE001 - Beam's own checks raise what they like
        return None, f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def given_options(beam_args: List[str]) -> Optional[Dict[str, Any]]:
    """The options as Beam itself parses `beam_args` (abbreviations and the two-word form
    included), or None when Beam refuses them (refusal() says why)."""
    return _parse(beam_args)[0]


def refusal(beam_args: Optional[List[str]]) -> Optional[str]:
    """Beam's one-line reason for refusing `beam_args` (e.g. "argument --direct_num_workers:
    invalid int value: 'x'"), or None when Beam takes them."""
    return _parse(beam_args)[1] if beam_args else None


def runner_name(given: Optional[Dict[str, Any]]) -> Optional[str]:
    """The runner the parsed options name, as Beam resolves it, without its module path and its
    optional "Runner" ending, in lower case: "" for none given (the DirectRunner), "portable"
    for PortableRunner, Portable or apache_beam...portable_runner.PortableRunner; None when
    Beam refused the options."""
    if given is None:
        return None
    name = (given.get("runner") or "").rsplit(".", 1)[-1].lower()
    return name[:-len("runner")] if name.endswith("runner") else name


def external_pool_address(beam_args: List[str]) -> Optional[str]:
    """The worker pool's address when `beam_args` run on the embedded job service with an
    EXTERNAL environment; None for any other configuration (DirectRunner, a real cluster's
    job server), which these guards leave alone."""
    given = given_options(beam_args)
    if runner_name(given) != "portable":
        return None
    if (given.get("job_endpoint") or "embed") != "embed":
        return None
    if (given.get("environment_type") or "").upper() != "EXTERNAL":
        return None
    return given.get("environment_config")


def check_pool(address: str, timeout_s: float = POOL_CHECK_TIMEOUT_S) -> None:
    """Raises BeamWorkerError unless something answers gRPC at `address` within `timeout_s`."""
    import grpc

    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise BeamWorkerError(
            f"no Beam SDK worker pool answers at {address} within {timeout_s:.0f} s; start one with "
            f"`fer-pipeline beam-workers --port {address.rsplit(':', 1)[-1]}`") from None
    finally:
        channel.close()


class RunnerGuards:
    """The worker failures the guards saw during one run, oldest first."""

    def __init__(self, connect_timeout_s: float):
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._failures: List[str] = []

    def take_failures(self) -> List[str]:
        """The failures seen since the last call."""
        with self._lock:
            found = list(self._failures)
            self._failures.clear()
        return found

    def record(self, message: str) -> str:
        with self._lock:
            self._failures.append(message)
        return message


def check_beam_version(installed: Optional[str] = None) -> None:
    """Raises BeamWorkerError, in one line naming both versions, unless the installed Beam is
    the one the guards were written for."""
    if installed is None:
        import apache_beam

        installed = apache_beam.__version__
    if installed != WRITTEN_FOR_BEAM:
        raise BeamWorkerError(
            f"the portable runner's worker guards (pipeline/beam_portable.py) were written for apache-beam "
            f"{WRITTEN_FOR_BEAM} and replace its internals; apache-beam {installed} is installed: install "
            f"apache-beam=={WRITTEN_FOR_BEAM} (constraints.txt) or run the Beam stages on the DirectRunner")


@contextlib.contextmanager
def runner_guards(connect_timeout_s: Optional[float] = None) -> Iterator[RunnerGuards]:
    """The three guards above for the with-block; Beam's own job invoker and EXTERNAL worker
    handler are put back on exit. Refuses another Beam version (check_beam_version) and a
    second run in the same process while one is guarded."""
    check_beam_version()
    if not _active.acquire(blocking=False):
        raise BeamWorkerError("another pipeline run in this process is using the portable runner's worker guards")
    guards = RunnerGuards(DEFAULT_CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s)
    try:
        from apache_beam.portability import common_urns
        from apache_beam.runners.portability import local_job_service
        from apache_beam.runners.portability.fn_api_runner import worker_handlers

        urn = common_urns.environments.EXTERNAL.urn
        registry = worker_handlers.WorkerHandler._registered_environments
        saved_invoker, saved_external = local_job_service.BeamJob.__dict__["_invoke_runner"], registry[urn]
        _install(guards)
        try:
            yield guards
        finally:
            local_job_service.BeamJob._invoke_runner = saved_invoker
            registry[urn] = saved_external
    finally:
        _active.release()


def _install(guards: RunnerGuards) -> None:
    from apache_beam.options import pipeline_options
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_fn_api_pb2, beam_runner_api_pb2
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers

    def invoke_runner(job):
        job.set_state(local_job_service.beam_job_api_pb2.JobState.RUNNING)
        runner = fn_runner.FnApiRunner(provision_info=job._provision_info)
        options = job.pipeline_options()
        runner._num_workers = max(1, int(options.view_as(pipeline_options.PortableOptions).sdk_worker_parallelism or 1))
        return runner.run_via_runner_api(job._pipeline_proto, options)

    local_job_service.BeamJob._invoke_runner = invoke_runner

    def fail_connection(conn, message):
        """Answers the connection's pending instructions, and any sent later, with an error: the
        bundle fails as if the worker had reported it."""
        def push_failed(request):
            if request is worker_handlers.BeamFnControlServicer._DONE_MARKER:
                return None
            return worker_handlers.ControlFuture(
                request.instruction_id,
                beam_fn_api_pb2.InstructionResponse(instruction_id=request.instruction_id, error=message))

        conn.push = push_failed
        for instruction_id in list(conn._futures_by_id):
            future = conn._futures_by_id.pop(instruction_id, None)
            if future is not None:
                future.set(beam_fn_api_pb2.InstructionResponse(instruction_id=instruction_id, error=message))

    def read_or_fail(conn, worker_id, closing):
        reason = "closed its control stream"
        try:
            for response in conn._input:
                conn._futures_by_id.pop(response.instruction_id).set(response)
        except Exception as e:  # the stream broke: the worker process is gone
            detail = e.details() if hasattr(e, "details") else e  # a grpc.RpcError says why in details()
            reason = f"lost its control stream ({type(e).__name__}: {detail})"
        if closing.is_set():
            return  # the runner closed it: the end of the job
        # Also when nothing is pending: an instruction sent later would wait for it forever.
        fail_connection(conn, guards.record(
            f"Beam SDK worker {worker_id} {reason} with {len(conn._futures_by_id)} instruction(s) unanswered: "
            f"the worker process died (see the worker pool's log)"))

    def watch_connect(conn, worker_id, url, asked):
        """Workers start side by side; each one gets `guards.connect_timeout_s` to connect."""
        while conn._state == worker_handlers.BeamFnControlServicer.UNSTARTED_STATE:
            if time.monotonic() - asked > guards.connect_timeout_s:
                fail_connection(conn, guards.record(
                    f"Beam SDK worker {worker_id} did not connect within {guards.connect_timeout_s:.0f} s: the pool at "
                    f"{url} started it, and it died or hung on start-up (see the worker pool's log)"))
                return
            time.sleep(0.05)
        _LOGGER.info("Beam SDK worker %s connected %.2f s after the pool was asked for it",
                     worker_id, time.monotonic() - asked)

    class GuardedExternalWorkerHandler(worker_handlers.ExternalWorkerHandler):
        def start_worker(self):
            import grpc

            conn = self.control_conn
            closing = threading.Event()  # set when the runner sends the end-of-job marker
            push = conn.push

            def push_and_note_the_end(request):
                if request is worker_handlers.BeamFnControlServicer._DONE_MARKER:
                    closing.set()
                return push(request)

            conn.push = push_and_note_the_end
            conn._read_thread = threading.Thread(
                name="beam_control_read", target=read_or_fail, args=(conn, self.worker_id, closing), daemon=True)
            url = self._external_payload.endpoint.url
            try:
                super().start_worker()
            except grpc.RpcError as e:
                raise BeamWorkerError(guards.record(
                    f"no Beam SDK worker pool answers at {url} ({e.code().name}); start one with "
                    f"`fer-pipeline beam-workers`")) from None
            except RuntimeError as e:  # the pool answered with an error
                raise BeamWorkerError(guards.record(f"the worker pool at {url} could not start a worker: {e}")) from None
            threading.Thread(target=watch_connect, args=(conn, self.worker_id, url, time.monotonic()),
                             name="beam_connect_watch", daemon=True).start()

    worker_handlers.WorkerHandler.register_environment(
        common_urns.environments.EXTERNAL.urn, beam_runner_api_pb2.ExternalPayload)(GuardedExternalWorkerHandler)
