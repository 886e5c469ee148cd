"""Faces in a frame: Haar-cascade detection, 48x48 gray crops prepared as the training data
(FER-2013 faces are 48x48 uint8 grayscale; the served model scales them itself), simple
tracking so a face keeps its id across frames, and per-face exponential smoothing."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from models import features

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


@dataclass
class Track:
    face_id: int
    box: Box
    missing: int = 0
    probabilities: Optional[np.ndarray] = None


@dataclass
class Tracker:
    """Greedy IoU matching of this frame's boxes to the faces of recent frames; a face not
    seen for `max_missing` frames is forgotten, a new box gets the next id."""
    min_iou: float = 0.3
    max_missing: int = 10
    tracks: Dict[int, Track] = field(default_factory=dict)
    next_id: int = 0

    def update(self, boxes: Sequence[Box]) -> List[int]:
        pairs = sorted(((iou(box, track.box), i, fid) for i, box in enumerate(boxes)
                        for fid, track in self.tracks.items()), reverse=True)
        assigned: Dict[int, int] = {}
        used = set()
        for score, i, fid in pairs:
            if score < self.min_iou:
                break
            if i not in assigned and fid not in used:
                assigned[i] = fid
                used.add(fid)
        ids = []
        for i, box in enumerate(boxes):
            fid = assigned.get(i)
            if fid is None:
                fid, self.next_id = self.next_id, self.next_id + 1
                self.tracks[fid] = Track(fid, box)
            self.tracks[fid].box, self.tracks[fid].missing = box, 0
            ids.append(fid)
        for fid in list(self.tracks):
            if fid not in ids:
                self.tracks[fid].missing += 1
                if self.tracks[fid].missing > self.max_missing:
                    del self.tracks[fid]
        return ids

    def smooth(self, face_id: int, probabilities: np.ndarray, alpha: float) -> np.ndarray:
        """Exponential smoothing per face: alpha = weight of the newest frame (1 = off)."""
        track = self.tracks[face_id]
        if track.probabilities is None or alpha >= 1.0:
            track.probabilities = probabilities
        else:
            track.probabilities = alpha * probabilities + (1 - alpha) * track.probabilities
        return track.probabilities


def top2(probabilities: np.ndarray) -> Tuple[Tuple[str, float], Tuple[str, float]]:
    first, second = np.argsort(probabilities)[::-1][:2]
    return ((features.CLASS_NAMES[first], float(probabilities[first])),
            (features.CLASS_NAMES[second], float(probabilities[second])))
