"""`fer-pipeline serve`'s options and flags, TF-free. Each flag also answers to the name
`tensorflow_model_server` gives it (--rest_api_port, --model_config_file, ...), and boolean
ones take its `--flag=true|false` form, so a TF Serving command line (serving/docker-compose.yml,
serving/k8s/) starts this server unchanged."""

import argparse
import dataclasses
import os
from typing import Optional

from core import arg_types, features
from serving.contract import Limits
from serving.defaults import (DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_POLL_SECONDS, DEFAULT_QUEUED_REQUESTS,
                              DEFAULT_REST_PORT, DEFAULT_WORKERS)
from serving.http_server import HttpLimits


class OptionsError(ValueError):
    """Options that cannot be served; the message names the flags and what is wrong."""


@dataclasses.dataclass(frozen=True)
class GrpcLimits:
    workers: int = DEFAULT_WORKERS  # calls run at once
    queued: int = DEFAULT_QUEUED_REQUESTS  # calls admitted beyond those, waiting for a thread


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    enabled: bool = False  # --enable_batching
    parameters_file: Optional[str] = None  # a BatchingParameters text proto, read when the server starts


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything `serve` takes: where the model is, where to listen, and, nested, what each
    part of the server is bounded by."""
    model_base_path: str = ""
    model_name: str = features.SERVING_MODEL_NAME
    model_config_file: Optional[str] = None  # a ModelServerConfig: replaces model_name/model_base_path
    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT  # 0: a free port (tests)
    rest_port: Optional[int] = DEFAULT_REST_PORT  # None: REST off
    poll_seconds: float = DEFAULT_POLL_SECONDS  # 0: look once
    monitoring_config_file: Optional[str] = None
    limits: Limits = Limits()  # one request, on either API
    http: HttpLimits = HttpLimits()  # REST's transport
    grpc: GrpcLimits = GrpcLimits()  # gRPC's threads
    batching: BatchingOptions = BatchingOptions()

    @property
    def enable_signature_method_name_check(self) -> bool:  # the flag's name (TF Serving's default: false)
        return self.limits.method_name_check

    def replace(self, **changes) -> "ServerOptions":
        """A copy with `changes`: fields of ServerOptions, or the flat names of FLAT (what a
        flag sets, wherever it is nested)."""
        nested = {}
        for name, value in changes.items():
            if name not in FLAT:
                continue
            for path in FLAT[name]:
                part, field = path.split(".")
                nested.setdefault(part, {})[field] = value
        top = {k: v for k, v in changes.items() if k not in FLAT}
        top.update({part: dataclasses.replace(top.get(part, getattr(self, part)), **fields)
                    for part, fields in nested.items()})
        return dataclasses.replace(self, **top)


# The flat names replace() takes, each with the nested fields it sets: one flag can bound two
# parts (--max_message_mb: the inputs a request declares, and the HTTP body read before them).
FLAT = {
    "max_message_bytes": ("limits.max_message_bytes", "http.max_body_bytes"),
    "max_batch_rows": ("limits.max_batch_rows",),
    "enable_signature_method_name_check": ("limits.method_name_check",),
    "rest_workers": ("http.workers",),
    "grpc_workers": ("grpc.workers",),
    "queued_requests": ("http.queued", "grpc.queued"),
    "max_connections": ("http.max_connections",),
    "read_timeout_s": ("http.read_timeout_s",),
    "idle_timeout_s": ("http.idle_timeout_s",),
    "request_timeout_s": ("http.request_timeout_s",),
    "first_byte_timeout_s": ("http.first_byte_timeout_s",),
    "enable_batching": ("batching.enabled",),
    "batching_parameters_file": ("batching.parameters_file",),
}


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
    flag("max-message-mb", type=arg_types.positive_int, default=d.limits.max_message_bytes // 2**20,
         help="largest request, and largest input a request may declare (default: %(default)s)")
    flag("max-batch-rows", type=arg_types.positive_int, default=d.limits.max_batch_rows,
         help="most rows (faces) one request may carry; more is refused, never run (default: %(default)s)")
    flag("rest-api-num-threads", type=arg_types.positive_int, default=d.http.workers,
         help="REST requests run at once (default: %(default)s)")
    flag("grpc-max-threads", type=arg_types.positive_int, default=d.grpc.workers,
         help="gRPC calls run at once (default: %(default)s)")
    flag("max-queued-requests", type=arg_types.non_negative_int, default=d.http.queued,
         help="requests waiting for a thread, per API, before 503 / RESOURCE_EXHAUSTED (default: %(default)s)")
    flag("rest-api-timeout-in-ms", type=arg_types.positive_int, default=int(d.http.request_timeout_s * 1000),
         help="a REST request not answered in this time gets 504 (default: %(default)s)")
    flag("rest-max-connections", type=arg_types.positive_int, default=d.http.max_connections,
         help="open REST connections; a new one beyond evicts one with no request in flight (silent ones first), "
              "503 only when all have one; lowered to what the fd limit leaves (default: %(default)s)")


def from_args(args, default_model_base_path: str) -> ServerOptions:
    where = ServerOptions(
        model_base_path=args.model_base_path or default_model_base_path, model_name=args.model_name,
        model_config_file=args.model_config_file, host=args.host, grpc_port=args.port,
        rest_port=args.rest_port or None, poll_seconds=args.file_system_poll_wait_seconds,
        monitoring_config_file=args.monitoring_config_file)
    return where.replace(
        max_message_bytes=args.max_message_mb * 2**20, max_batch_rows=args.max_batch_rows,
        enable_signature_method_name_check=args.enable_signature_method_name_check,
        rest_workers=args.rest_api_num_threads, grpc_workers=args.grpc_max_threads,
        queued_requests=args.max_queued_requests, max_connections=args.rest_max_connections,
        request_timeout_s=args.rest_api_timeout_in_ms / 1000,
        enable_batching=args.enable_batching, batching_parameters_file=args.batching_parameters_file)


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
