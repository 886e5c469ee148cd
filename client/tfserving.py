"""A TF Serving client for the FER model on the tensorflow-serving-api gRPC stubs (REST as
an alternative): deadlines, retries with exponential backoff and jitter for transient
failures, and one batched Predict for all the faces of a frame."""

import json
import random
import time
import urllib.error
import urllib.request
from typing import Callable, List, Optional, Tuple

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from client.tensors import to_ndarray, to_tensor_proto
from core import features

# Worth another try: the server is (re)starting, overloaded, or the deadline was too tight.
RETRIABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class ServingError(RuntimeError):
    def __init__(self, code: str, message: str, attempts: int):
        super().__init__(f"{code}: {message} (after {attempts} attempt{'s' if attempts > 1 else ''})")
        self.code, self.attempts = code, attempts

    @property
    def unavailable(self) -> bool:
        return self.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def as_batch(faces: np.ndarray) -> np.ndarray:
    """[48,48], [N,48,48] or [N,48,48,1] uint8 -> [N,48,48,1] uint8."""
    faces = np.asarray(faces)
    if faces.dtype != np.uint8:
        raise TypeError(f"faces must be uint8 grayscale, got {faces.dtype}")
    if faces.shape == features.IMAGE_SHAPE[:2]:
        faces = faces[None]
    if faces.ndim == 3:
        faces = faces[..., None]
    if faces.shape[1:] != features.IMAGE_SHAPE:
        raise ValueError(f"faces must be 48x48 crops, got shape {faces.shape}")
    return faces


class _Retrying:
    def __init__(self, retries: int, backoff_s: float, max_backoff_s: float, sleep: Callable[[float], None]):
        self.retries, self.backoff_s, self.max_backoff_s, self.sleep = retries, backoff_s, max_backoff_s, sleep

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)


class FerClient(_Retrying):
    """gRPC. `target` is HOST:PORT of TF Serving (or `fer-pipeline serve`)."""

    def __init__(self, target: str = "127.0.0.1:8500", model_name: str = features.SERVING_MODEL_NAME,
                 timeout_s: float = 2.0, retries: int = 3, backoff_s: float = 0.05, max_backoff_s: float = 1.0,
                 signature: str = "serving_default", sleep: Callable[[float], None] = time.sleep):
        super().__init__(retries, backoff_s, max_backoff_s, sleep)
        self.target, self.model_name, self.timeout_s, self.signature = target, model_name, timeout_s, signature
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 16 << 20),
            # Reconnect within a second of a server restart (gRPC's default backoff starts at
            # 1 s and grows to 2 min): a live client should not stay dark that long.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ])
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self.last_version: Optional[int] = None

    def _call(self, method, request):
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as e:
                if e.code() not in RETRIABLE or attempt == self.retries:
                    raise ServingError(e.code().name, e.details() or "", attempt + 1) from None
                self.sleep(self.delay(attempt))

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities [N, 7] (FER label order) for N faces, in one Predict request."""
        batch = as_batch(faces)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature
        request.inputs[features.SERVING_IMAGE_INPUT].CopyFrom(to_tensor_proto(batch))
        response = self._call(self._prediction.Predict, request)
        self.last_version = response.model_spec.version.value
        return to_ndarray(response.outputs[features.SERVING_PROBABILITIES_OUTPUT])

    def status(self) -> List[Tuple[int, str]]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = self._call(self._models.GetModelStatus, request)
        return [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
                for s in response.model_version_status]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RestClient(_Retrying):
    """TF Serving's REST API (port 8501): the same predict, JSON on the wire."""

    def __init__(self, base_url: str = "http://127.0.0.1:8501", model_name: str = features.SERVING_MODEL_NAME,
                 timeout_s: float = 2.0, retries: int = 3, backoff_s: float = 0.05, max_backoff_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(retries, backoff_s, max_backoff_s, sleep)
        self.url = f"{base_url.rstrip('/')}/v1/models/{model_name}:predict"
        self.timeout_s = timeout_s

    def predict(self, faces: np.ndarray) -> np.ndarray:
        body = json.dumps({"instances": as_batch(faces).tolist()}).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return np.asarray(json.loads(response.read())["predictions"], dtype=np.float32)
            except urllib.error.HTTPError as e:
                message = json.loads(e.read() or b"{}").get("error", e.reason)
                code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED"}.get(e.code, "UNAVAILABLE")
                if code != "UNAVAILABLE" or attempt == self.retries:
                    raise ServingError(code, message, attempt + 1) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == self.retries:
                    raise ServingError("UNAVAILABLE", str(getattr(e, "reason", e)), attempt + 1) from None
            self.sleep(self.delay(attempt))
