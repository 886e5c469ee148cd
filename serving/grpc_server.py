"""gRPC: TF Serving's PredictionService (Predict, Classify, Regress, GetModelMetadata) and
ModelService.GetModelStatus, on the tensorflow-serving-api stubs' service definitions: gRPC
decodes the request protos, api.Service answers them.

Bounded: `workers` threads run calls and at most `workers + queued` are admitted; beyond
that gRPC itself answers RESOURCE_EXHAUSTED ("Concurrent RPC limit exceeded!") without
queueing. Messages above the bound are refused by gRPC (RESOURCE_EXHAUSTED), as in TF
Serving. An unexpected error is answered INTERNAL with a one-line message."""

import logging
import time
from concurrent import futures
from typing import Optional

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.api import Service
from serving.contract import ApiError
from serving.defaults import DEFAULT_QUEUED_REQUESTS, DEFAULT_WORKERS
from serving.metrics import Metrics

log = logging.getLogger("fer.serving.grpc")


class _Calls:
    def __init__(self, service: Service, metrics: Optional[Metrics]):
        self.service, self.metrics = service, metrics

    def call(self, name: str, context, fn, request):
        start, code = time.perf_counter(), "OK"
        try:
            return fn(request)
        except ApiError as e:
            code, message = e.code, str(e)
        except Exception as e:  # the catch-all: the traceback stays in the server's log
            log.exception("gRPC %s failed", name)
            code, message = "INTERNAL", f"Internal error: {type(e).__name__}"
        finally:
            if self.metrics is not None:
                self.metrics.record(name, "GRPC", code, time.perf_counter() - start)
        context.abort(grpc.StatusCode[code], message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, calls: _Calls):
        self.calls = calls

    def Predict(self, request, context):
        return self.calls.call("Predict", context, self.calls.service.predict, request)

    def Classify(self, request, context):
        return self.calls.call("Classify", context, self.calls.service.classify, request)

    def Regress(self, request, context):
        return self.calls.call("Regress", context, self.calls.service.regress, request)

    def GetModelMetadata(self, request, context):
        return self.calls.call("GetModelMetadata", context, self.calls.service.metadata, request)

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served by this server")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, calls: _Calls):
        self.calls = calls

    def GetModelStatus(self, request, context):
        return self.calls.call("GetModelStatus", context, self.calls.service.status, request)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server serves the one model it was started with")


def start(service: Service, host: str, port: int, workers: int = DEFAULT_WORKERS,
          queued: int = DEFAULT_QUEUED_REQUESTS, metrics: Optional[Metrics] = None) -> grpc.Server:
    max_bytes = service.limits.max_message_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes)],
        maximum_concurrent_rpcs=workers + queued,
    )
    calls = _Calls(service, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(calls), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises here for a port in use (it returned 0 in older versions)
        bound = 0
    if not bound:
        raise OSError(f"cannot serve gRPC on {host}:{port}: the port is in use or not bindable")
    server.start()
    server.bound_port = bound
    return server
