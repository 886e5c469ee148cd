"""`fer-pipeline serve`'s options and flags, TF-free. Each flag also answers to the name
`tensorflow_model_server` gives it (--rest_api_port, --model_config_file, ...), and boolean
ones take its `--flag=true|false` form, so a TF Serving command line (serving/docker-compose.yml,
serving/k8s/) starts this server unchanged."""

import argparse
import dataclasses
import os
from typing import Optional

from models import arg_types, features
from serving.defaults import (DEFAULT_FIRST_BYTE_TIMEOUT_S, DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT_S,
                              DEFAULT_MAX_BATCH_ROWS,
                              DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_POLL_SECONDS,
                              DEFAULT_QUEUED_REQUESTS, DEFAULT_READ_TIMEOUT_S, DEFAULT_REQUEST_TIMEOUT_S,
                              DEFAULT_REST_PORT, DEFAULT_WORKERS)


class OptionsError(ValueError):
    """Options that cannot be served; the message names the flags and what is wrong."""


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything `serve` takes."""
    model_base_path: str = ""
    model_name: str = features.SERVING_MODEL_NAME
    model_config_file: Optional[str] = None  # a ModelServerConfig: replaces model_name/model_base_path
    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT  # 0: a free port (tests)
    rest_port: Optional[int] = DEFAULT_REST_PORT  # None: REST off
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    poll_seconds: float = DEFAULT_POLL_SECONDS  # 0: look once
    enable_batching: bool = False
    enable_signature_method_name_check: bool = False  # TF Serving's default (server.h)
    batching_parameters_file: Optional[str] = None
    monitoring_config_file: Optional[str] = None
    rest_workers: int = DEFAULT_WORKERS
    grpc_workers: int = DEFAULT_WORKERS
    queued_requests: int = DEFAULT_QUEUED_REQUESTS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    first_byte_timeout_s: float = DEFAULT_FIRST_BYTE_TIMEOUT_S


def add_arguments(v: argparse.ArgumentParser, default_model_base_path_help: str) -> None:
    def flag(name, *rest, **kwargs):
        """--kebab-case plus TF Serving's --snake_case spelling."""
        names = [f"--{name}"] + ([f"--{name.replace('-', '_')}"] if "-" in name else []) + list(rest)
        v.add_argument(*names, **kwargs)

    d = ServerOptions()
    flag("model-base-path", default=None, help=f"TF Serving model base path: DIR/<version>/saved_model.pb; waited on "
                                             f"while empty (default: {default_model_base_path_help})")
    flag("model-name", default=d.model_name, help="TF Serving model name (default: %(default)s)")
    flag("model-config-file", default=None, help="a ModelServerConfig text proto (serving/models.config): one model, "
                                               "latest version; replaces --model_name and --model_base_path")
    flag("model-config-file-poll-wait-seconds", type=arg_types.seconds, default=0.0,
         help="accepted for TF Serving's command lines; the config file is read once")
    flag("port", type=arg_types.port, default=d.grpc_port, help="gRPC port (default: %(default)s, TF Serving's)")
    flag("rest-port", "--rest_api_port", type=arg_types.port, default=DEFAULT_REST_PORT,
         help="REST port; 0 turns REST off (default: %(default)s)")
    flag("host", default=d.host, help="interface to bind (default: %(default)s, this machine only)")
    flag("file-system-poll-wait-seconds", type=arg_types.seconds, default=d.poll_seconds,
         help="seconds between looks for a new version; 0 looks once (default: %(default)s)")
    flag("enable-batching", type=arg_types.boolean, nargs="?", const=True, default=False,
         help="batch concurrent Predict requests, as TF Serving's --enable_batching (default: %(default)s)")
    flag("enable-signature-method-name-check", type=arg_types.boolean, nargs="?", const=True, default=False,
         help="Classify and Regress refuse a signature whose method_name is not theirs, as TF Serving's "
              "--enable_signature_method_name_check (default: %(default)s, TF Serving's)")
    flag("batching-parameters-file", default=None,
         help="a BatchingParameters text proto (serving/batching_parameters.txt)")
    flag("monitoring-config-file", default=None,
         help="a MonitoringConfig text proto (serving/monitoring.config): Prometheus metrics on the REST port")
    flag("max-message-mb", type=arg_types.positive_int, default=d.max_message_bytes // 2**20,
         help="largest request, and largest input a request may declare (default: %(default)s)")
    flag("max-batch-rows", type=arg_types.positive_int, default=d.max_batch_rows,
         help="most rows (faces) one request may carry; more is refused, never run (default: %(default)s)")
    flag("rest-api-num-threads", type=arg_types.positive_int, default=d.rest_workers,
         help="REST requests run at once (default: %(default)s)")
    flag("grpc-max-threads", type=arg_types.positive_int, default=d.grpc_workers,
         help="gRPC calls run at once (default: %(default)s)")
    flag("max-queued-requests", type=arg_types.non_negative_int, default=d.queued_requests,
         help="requests waiting for a thread, per API, before 503 / RESOURCE_EXHAUSTED (default: %(default)s)")
    flag("rest-api-timeout-in-ms", type=arg_types.positive_int, default=int(d.request_timeout_s * 1000),
         help="a REST request not answered in this time gets 504 (default: %(default)s)")
    flag("rest-max-connections", type=arg_types.positive_int, default=d.max_connections,
         help="open REST connections; a new one beyond evicts one with no request in flight (silent ones first), "
              "503 only when all have one; lowered to what the fd limit leaves (default: %(default)s)")


def from_args(args, default_model_base_path: str) -> ServerOptions:
    return ServerOptions(
        model_base_path=args.model_base_path or default_model_base_path, model_name=args.model_name,
        model_config_file=args.model_config_file, host=args.host, grpc_port=args.port,
        rest_port=args.rest_port or None, max_message_bytes=args.max_message_mb * 2**20,
        max_batch_rows=args.max_batch_rows, poll_seconds=args.file_system_poll_wait_seconds,
        enable_batching=args.enable_batching,
        enable_signature_method_name_check=args.enable_signature_method_name_check,
        batching_parameters_file=args.batching_parameters_file,
        monitoring_config_file=args.monitoring_config_file, rest_workers=args.rest_api_num_threads,
        grpc_workers=args.grpc_max_threads, queued_requests=args.max_queued_requests,
        request_timeout_s=args.rest_api_timeout_in_ms / 1000, max_connections=args.rest_max_connections)


def check_ports(options: ServerOptions) -> None:
    """gRPC and REST on one port is refused before anything loads (else the model loads, gRPC
    binds the port and REST then fails on it)."""
    if options.grpc_port and options.rest_port and options.grpc_port == options.rest_port:
        raise OptionsError(f"--port and --rest_api_port are both {options.grpc_port}: gRPC and REST need a port "
                           "each (TF Serving's defaults: 8500 and 8501)")


def check_base_path(base_path: str, where: str) -> None:
    """A SavedModel version folder given as the model base path (as `predict --model` takes
    one) is refused with the path to give: TF Serving would wait for ever for a numbered
    folder inside it."""
    if os.path.isfile(os.path.join(base_path, "saved_model.pb")):
        parent = os.path.dirname(os.path.abspath(base_path))
        raise OptionsError(f"{where} {base_path} is a SavedModel version folder, not a model base path "
                           f"(<base>/<version>/saved_model.pb): give its parent, {parent}")
