"""gRPC: TF Serving's PredictionService (Predict, Classify, GetModelMetadata) and
ModelService.GetModelStatus, on the tensorflow-serving-api stubs' service definitions."""

from concurrent import futures

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import api
from serving.model_store import ModelStore


def _call(context, fn, store, request):
    try:
        return fn(store, request)
    except api.ApiError as e:
        context.abort(grpc.StatusCode[e.code], str(e))


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def Predict(self, request, context):
        return _call(context, api.predict, self.store, request)

    def Classify(self, request, context):
        return _call(context, api.classify, self.store, request)

    def GetModelMetadata(self, request, context):
        return _call(context, api.metadata, self.store, request)

    def Regress(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the FER model has no regression signature")

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served here")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def GetModelStatus(self, request, context):
        return _call(context, api.status, self.store, request)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server serves one model from --model-base-path")


def start(store: ModelStore, host: str, port: int, max_message_bytes: int, workers: int = 8) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(store), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    server.start()
    server.bound_port = bound
    return server
