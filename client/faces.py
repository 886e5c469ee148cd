"""Faces in a frame: Haar-cascade detection, 48x48 gray crops prepared as the training data
(FER-2013 faces are 48x48 uint8 grayscale; the served model scales them itself), box overlap
and top-2 emotions. Following faces through video: client/tracking.py."""

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from core import features

Box = Tuple[int, int, int, int]  # x, y, w, h
CASCADE_FILE = "haarcascade_frontalface_default.xml"  # shipped inside opencv-python


def load_cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}")
    return cascade


def detect_faces(gray: np.ndarray, cascade: cv2.CascadeClassifier, min_size: int = 48,
                 scale_factor: float = 1.2, min_neighbors: int = 4, detect_scale: float = 0.5) -> List[Box]:
    """Boxes in `gray`'s coordinates. The cascade runs on the frame shrunk by `detect_scale`
    (a quarter of the pixels at 0.5: the detector's cost) and the boxes are scaled back; faces
    smaller than `min_size` pixels, too small for a 48x48 crop, are not looked for. At half
    scale 4 neighbours keep every face of the test videos that 5 found at full scale, in about
    half the time (bench/results/webcam.md)."""
    small = gray if detect_scale == 1.0 else cv2.resize(gray, None, fx=detect_scale, fy=detect_scale,
                                                        interpolation=cv2.INTER_AREA)
    smallest = max(24, int(round(min_size * detect_scale)))  # the frontal cascade's window is 24x24
    boxes = cascade.detectMultiScale(small, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                     minSize=(smallest, smallest))
    if not len(boxes):
        return []
    height, width = gray.shape[:2]
    result = []
    for x, y, w, h in boxes:
        x, y, w, h = (int(round(v / detect_scale)) for v in (x, y, w, h))
        result.append((x, y, min(w, width - x), min(h, height - y)))
    return result


def crop_faces(gray: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """uint8 [N, 48, 48]: each box cut out and shrunk with area averaging (no smoothing or
    normalisation: the model's Transform graph does the scaling it was trained with)."""
    height, width = features.IMAGE_SHAPE[:2]
    crops = np.empty((len(boxes), height, width), np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        crops[i] = cv2.resize(gray[y:y + h, x:x + w], (width, height), interpolation=cv2.INTER_AREA)
    return crops


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix, iy = max(0, min(ax + aw, bx + bw) - max(ax, bx)), max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def top2(probabilities: np.ndarray, first: Optional[int] = None) -> Tuple[Tuple[str, float], Tuple[str, float]]:
    """(name, probability) of the top class, or of `first` when given (the label on show),
    and of the best other class."""
    ranked = [int(k) for k in np.argsort(probabilities)[::-1]]
    first = ranked[0] if first is None else int(first)
    second = next(k for k in ranked if k != first)
    return ((features.CLASS_NAMES[first], float(probabilities[first])),
            (features.CLASS_NAMES[second], float(probabilities[second])))
