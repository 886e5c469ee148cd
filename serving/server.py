"""`fer-pipeline serve`: the local server speaking TF Serving's API.

Production serving is TF Serving itself (serving/ holds its configuration). This server
exists because `tensorflow_model_server` installs from no package registry these machines
reach, while this runs wherever Python and TensorFlow do: development, tests, benchmarks.
It serves one model from a TF Serving model base path (<base>/<version>/saved_model.pb),
the newest version, picks up newly pushed versions while running, and waits for the first
one when there is none yet. It reads the same flags and config files as
`tensorflow_model_server` (serving/docker-compose.yml's command line works on both).
"""

import dataclasses
import logging
import signal
import socket
import threading
from typing import Optional

from serving import config_files, fd_limit, grpc_server, rest
from serving.api import Service
from serving.batching import Batcher
from serving.defaults import DEFAULT_BATCH_TIMEOUT_S, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_ENQUEUED_BATCHES
from serving.metrics import Metrics
from serving.model_store import ModelStore
from serving.options import ServerOptions, check_base_path, check_ports

log = logging.getLogger("fer.serving")

DEFAULT_BATCHING = config_files.Batching(DEFAULT_MAX_BATCH_SIZE, DEFAULT_BATCH_TIMEOUT_S, DEFAULT_MAX_ENQUEUED_BATCHES,
                                         num_batch_threads=1)


@dataclasses.dataclass
class RunningServer:
    service: Service
    grpc: object
    rest: Optional[object]
    grpc_port: int
    rest_port: Optional[int]
    metrics: Metrics
    prometheus_path: Optional[str]

    @property
    def store(self) -> ModelStore:
        return self.service.store

    def stop(self) -> None:
        self.grpc.stop(grace=2).wait()
        if self.rest is not None:
            self.rest.stop()
        self.store.stop()


def _check_port_free(host: str, port: int, api_name: str) -> None:
    """A port in use is reported before the model loads (and its log lines), in one line."""
    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # SO_REUSEADDR as servers bind: a port left in TIME_WAIT by a server that just stopped
        # is free; one a socket listens on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot serve {api_name} on {host}:{port}: {e.strerror}") from None


def start(options: ServerOptions = ServerOptions(), **changes) -> RunningServer:
    """`changes`: as ServerOptions.replace takes them. Raises config_files.ConfigError for a
    bad config file, options.OptionsError for options that cannot be served (one port for
    both APIs, a version folder as the base path), OSError for a port that cannot be bound."""
    options = options.replace(**changes)
    check_ports(options)
    _check_port_free(options.host, options.grpc_port, "gRPC")
    if options.rest_port:
        _check_port_free(options.host, options.rest_port, "REST")
    if options.model_config_file:
        model = config_files.read_model_config(options.model_config_file)
        check_base_path(model.base_path, f"{options.model_config_file}: base_path")
    else:
        model = config_files.ModelConfig(options.model_name, options.model_base_path)
        check_base_path(model.base_path, "--model_base_path")
    batching = config_files.read_batching(options.batching.parameters_file, DEFAULT_BATCHING)
    prometheus_path = config_files.read_prometheus_path(options.monitoring_config_file)
    batcher = (Batcher(batching.max_batch_size, batching.batch_timeout_s, batching.max_enqueued_batches)
               if options.batching.enabled else None)
    metrics = Metrics(model.name)
    store = ModelStore(model.name, model.base_path, poll_seconds=options.poll_seconds,
                       version_labels=model.version_labels)
    store.on_load = metrics.version_loaded
    service = Service(store, options.limits, batcher)
    store.start()
    try:
        grpc = grpc_server.start(service, options.host, options.grpc_port, options.grpc.workers, options.grpc.queued,
                                 metrics)
    except OSError:
        store.stop()
        raise
    http = None
    if options.rest_port is not None:
        try:
            http = rest.start(service, options.host, options.rest_port, options.http, metrics, prometheus_path)
        except OSError:
            grpc.stop(0)
            store.stop()
            raise
    return RunningServer(service, grpc, http, grpc.bound_port, http.server_address[1] if http else None, metrics,
                         prometheus_path)


def _raise_fd_limit(options: ServerOptions):
    """The soft open-file limit raised to the hard one, and the REST connection cap kept within
    what it leaves (lowered when above). (options, log lines): the lines are logged once the
    server is up, so that an error before then stays one line."""
    limits = fd_limit.raise_soft_limit()
    if limits is None:
        return options, []
    old, new, hard = limits
    lines = [(logging.INFO, f"Open-file limit (RLIMIT_NOFILE): soft {old} -> {new} (hard {hard})")]
    budget = fd_limit.connection_budget(new)
    if options.rest_port is not None and options.http.max_connections > budget:
        lines.append((logging.WARNING, f"--rest_max_connections {options.http.max_connections} is above what the "
                                       f"open-file limit {new} leaves ({budget}, keeping {fd_limit.RESERVED_FDS} for "
                                       f"the rest of the server): serving at most {budget} REST connections"))
        options = options.replace(max_connections=budget)
    return options, lines


def serve_forever(options: ServerOptions) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options, fd_lines = _raise_fd_limit(options)
    server = start(options)
    for level, line in fd_lines:
        log.log(level, line)
    current = server.store.current()
    log.info("Running gRPC ModelServer at %s:%d%s; model %s from %s, %s", options.host, server.grpc_port,
             f", HTTP/REST at :{server.rest_port}" if server.rest_port else "", server.store.model_name,
             server.store.base_path, f"version {current.version}" if current else "waiting for its first version")
    if server.rest_port:
        log.info("REST connections: at most %d open (a new one beyond evicts an idle one; 503 only when all have a "
                 "request in flight); %g s to a first byte, %g s to a whole request, %g s idle",
                 options.http.max_connections, options.http.first_byte_timeout_s, options.http.read_timeout_s,
                 options.http.idle_timeout_s)
    if server.prometheus_path:
        log.info("Prometheus metrics at http://%s:%d%s", options.host, server.rest_port, server.prometheus_path)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
