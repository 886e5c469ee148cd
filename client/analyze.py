"""In-process emotion recognition, as the `fer` package and deepface offer it:

    from client.analyze import analyze
    for face in analyze("group.jpg"):          # a path, or a BGR / gray numpy image
        print(face["box"], face["dominant_emotion"], face["emotions"]["happy"])

Faces come left to right; each gets its box (x, y, w, h in the image's pixels), the 7 class probabilities
by name, the dominant emotion and the detector's confidence (None: the Haar cascade gives
none). The detector is MTCNN unless `detector=` names another (client/detectors.py: "haar",
"blazeface", "mtcnn"); crops and preprocessing are fer-webcam's (client/faces.py); the model is
the shipped one (models/pretrained/), a SavedModel or TF Serving base path given as
`model=`, or a server given as `server="host:8500"` (TF Serving's gRPC Predict).
"""

import os
import threading
from typing import Dict, List, Optional, Union

import cv2
import numpy as np

from client import detectors
from client import faces as face_ops
from core import features

ImageLike = Union[str, "os.PathLike[str]", np.ndarray]


class ImageError(ValueError):
    """The image cannot be read or is not an image array; the message says which and why."""


class PredictorError(RuntimeError):
    """The server could not answer (after the client's retries); the message says why."""


def read_image(image: ImageLike) -> np.ndarray:
    """A path or an array -> uint8 [H, W] (gray) or [H, W, 3] (BGR), what the detectors take.
    ImageError for a path that is no image or an array that is none; TypeError for what is
    neither a path nor an array (None)."""
    import cv2

    if image is None or not isinstance(image, (str, os.PathLike, np.ndarray, list, tuple)):
        raise TypeError(f"image: expected a path (str or os.PathLike) or a numpy image array, got "
                        f"{type(image).__name__}")
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if os.path.isdir(path):
            raise ImageError(f"{path} is a folder, not an image (analyze() takes one image; predict takes folders)")
        if not os.path.isfile(path):
            raise ImageError(f"{path}: no such file")
        pixels = cv2.imread(path, cv2.IMREAD_COLOR)
        if pixels is None:
            raise ImageError(f"{path}: not an image OpenCV can read")
        return pixels
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] in (3, 4):
        if array.dtype != np.uint8:
            if array.min() < 0 or array.max() > 255:
                raise ImageError(f"pixel values must lie in 0..255; got {array.min()}..{array.max()}")
            array = array.astype(np.uint8)
        return array if array.shape[2] == 3 else cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim != 2 or min(array.shape) == 0:
        raise ImageError(f"an image array must be [H, W], [H, W, 1], [H, W, 3] (BGR) or [H, W, 4]; got {array.shape}")
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise ImageError(f"pixel values must lie in 0..255; got {array.min()}..{array.max()}")
        array = array.astype(np.uint8)
    return array


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory, or a TF Serving base path (its newest numeric version)."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(n) for n in os.listdir(path) if n.isdigit()
                       and os.path.exists(os.path.join(path, n, "saved_model.pb"))) if os.path.isdir(path) else [])
    if not versions:
        raise FileNotFoundError(f"{path}: neither a SavedModel nor a model base path with <version>/saved_model.pb")
    return os.path.join(path, str(versions[-1]))


class SavedModelPredictor:
    """faces uint8 [N, 48, 48] -> probabilities [N, 7] through the model's serving_default,
    the signature TF Serving clients call."""

    def __init__(self, path: str = features.SHIPPED_MODEL_BASE_PATH):
        import tensorflow as tf

        self.path = resolve_saved_model(path)
        self._loaded = tf.saved_model.load(self.path)
        self._serve = self._loaded.signatures["serving_default"]
        self._tf = tf

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, features.NUM_CLASSES), np.float32)
        images = self._tf.constant(np.asarray(faces, np.uint8).reshape((-1,) + features.IMAGE_SHAPE))
        return self._serve(**{features.SERVING_IMAGE_INPUT: images})[features.SERVING_PROBABILITIES_OUTPUT].numpy()

    def close(self) -> None:
        pass


class TflitePredictor:
    """The same through the model's TFLite twin (the file the Trainer writes beside the
    SavedModel, models/tflite_export.py), on one thread: the lightest way to run it here."""

    FILE = "fer.tflite"  # models.tflite_export.TFLITE_FILE (the client does not import models/ code)

    def __init__(self, path: str = features.SHIPPED_MODEL_BASE_PATH, threads: int = 1):
        import tensorflow as tf

        self.path = os.path.join(resolve_saved_model(path), self.FILE)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path}: this model has no TFLite twin")
        self._interpreter = tf.lite.Interpreter(model_path=self.path, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._rows = None

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, features.NUM_CLASSES), np.float32)
        images = np.ascontiguousarray(np.asarray(faces, np.uint8).reshape((-1,) + features.IMAGE_SHAPE))
        if self._rows != len(images):  # the interpreter's tensors are sized per batch
            self._interpreter.resize_tensor_input(self._input, list(images.shape))
            self._interpreter.allocate_tensors()
            self._rows = len(images)
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()

    def close(self) -> None:
        pass


class ServerPredictor:
    """The same through a TF Serving (or `fer-pipeline serve`) gRPC endpoint."""

    def __init__(self, address: str, model_name: str = features.SERVING_MODEL_NAME):
        from client.tfserving import FerClient

        self._client = FerClient(address, model_name=model_name)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        from client.tfserving import ServingError

        if not len(faces):
            return np.zeros((0, features.NUM_CLASSES), np.float32)
        try:
            return self._client.predict(faces)
        except ServingError as e:
            raise PredictorError(f"server {self._client.target}: {e}") from None

    def close(self) -> None:
        self._client.close()


class Analyzer:
    """Detector + model, loaded once; call it on images."""

    def __init__(self, model: Optional[str] = None, server: Optional[str] = None,
                 detector: str = detectors.DEFAULT_DETECTOR):
        if model and server:
            raise ValueError("give a model or a server, not both")
        self.detector = detectors.make(detector)
        self.predictor = (ServerPredictor(server) if server
                          else SavedModelPredictor(model or features.SHIPPED_MODEL_BASE_PATH))

    def __call__(self, image: ImageLike) -> List[Dict]:
        pixels = read_image(image)
        found = sorted(self.detector(pixels), key=lambda d: (d.box[0], d.box[1]))  # left to right
        gray = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.ndim == 3 else pixels
        probabilities = self.predictor.predict(face_ops.crop_faces(gray, [d.box for d in found]))
        return [face_result(d.box, p, d.confidence) for d, p in zip(found, probabilities)]

    def close(self) -> None:
        self.predictor.close()


def face_result(box, probabilities: np.ndarray, confidence: Optional[float] = None) -> Dict:
    emotions = {name: float(p) for name, p in zip(features.CLASS_NAMES, probabilities)}
    return {"box": [int(v) for v in box], "emotions": emotions,
            "dominant_emotion": features.CLASS_NAMES[int(np.argmax(probabilities))], "confidence": confidence}


_analyzers: Dict[tuple, Analyzer] = {}
_lock = threading.Lock()


def analyze(image: ImageLike, model: Optional[str] = None, server: Optional[str] = None,
            detector: str = detectors.DEFAULT_DETECTOR) -> List[Dict]:
    """One dict per face found in `image` (see the module's docstring). The detector and
    model are loaded on the first call and kept for the next ones with the same choices."""
    pixels = read_image(image)  # a bad argument is said before the detector and model load
    key = (model, server, detector)
    with _lock:
        analyzer = _analyzers.get(key)
        if analyzer is None:
            analyzer = _analyzers[key] = Analyzer(model=model, server=server, detector=detector)
    return analyzer(pixels)
