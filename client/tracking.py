"""Faces followed through live video: each face's box is carried from frame to frame by
sparse optical flow, and a thorough detector, on a thread of its own, confirms the tracks
and finds new faces every few frames, at once when a track is lost or when something moves
where no track is.

Why: a detector thorough enough to find a face 40 px wide (the cascade at full scale) takes
tens of milliseconds a 640x480 frame, several frame budgets at 60 frames/s; carrying a box
by flow takes well under a millisecond a face. So the detector runs beside the video instead
of inside each frame, and boxes follow the faces in between instead of standing still
(bench/results/webcam.md measures both against detection on every frame).

Carrying a box (median flow, Kalal et al. 2010): a grid of points inside the box is tracked
forward by pyramidal Lucas-Kanade and back again; points whose round trip misses by more
than FB_MAX_PX are dropped; the box moves by the median displacement and scales by the
median change of the distances between point pairs. Too few points left: the track is lost.

Detections arrive for the frame they were run on, a few frames old; they are carried to the
current frame by the same flow before they are matched to the tracks by overlap.
"""

import itertools
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from client import faces as face_ops
from client.detectors import Detection

Box = face_ops.Box
GRID = 5  # a GRID x GRID lattice of points per box
FB_MAX_PX = 1.0  # forward-backward error above which a point is dropped
MIN_POINTS = 0.4  # the share of a box's points that must survive, or the track is lost
MATCH_IOU = 0.3  # a detection confirms the track it overlaps this much
MAX_UNCONFIRMED = 2  # detections in a row that may miss a track before it is dropped
LOST_MEMORY = 30  # frames a lost track's id waits for its face to be detected again
MOTION_SCALE = 8  # motion is looked for on the frame shrunk this many times
MOTION_LEVEL = 25  # grey-level change that counts as motion
# Motion near a face is that person's head and body moving: the area a track masks reaches
# one face width either side, 3/4 of one above and three below.
MOTION_MASK = (1.0, 0.75, 1.0, 3.0)  # left, top, right, bottom, in face sizes
MOTION_MIN_FACE = 36  # motion must cover at least a face this wide (px) elsewhere to trigger
_LK = dict(winSize=(11, 11), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


def _grid(box: Box) -> np.ndarray:
    x, y, w, h = box
    xs = x + w * np.linspace(0.2, 0.8, GRID)
    ys = y + h * np.linspace(0.2, 0.8, GRID)
    return np.array([(px, py) for py in ys for px in xs], np.float32)


def carry_boxes(previous: np.ndarray, current: np.ndarray, boxes: Sequence[Box]) -> List[Optional[Box]]:
    """Each box of the gray frame `previous` where its content is in `current` (same size),
    or None where the flow lost it."""
    if not boxes:
        return []
    points = np.concatenate([_grid(box) for box in boxes]).reshape(-1, 1, 2)
    forward, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, **_LK)
    backward, status_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, forward, None, **_LK)
    error = np.linalg.norm((backward - points).reshape(-1, 2), axis=1)
    good = (status.ravel() == 1) & (status_back.ravel() == 1) & (error < FB_MAX_PX)
    height, width = current.shape[:2]
    carried: List[Optional[Box]] = []
    per_box = GRID * GRID
    for i, (x, y, w, h) in enumerate(boxes):
        keep = good[i * per_box:(i + 1) * per_box]
        if keep.mean() < MIN_POINTS:
            carried.append(None)
            continue
        old = points[i * per_box:(i + 1) * per_box][keep].reshape(-1, 2)
        new = forward[i * per_box:(i + 1) * per_box][keep].reshape(-1, 2)
        dx, dy = np.median(new - old, axis=0)
        pairs = np.array(list(itertools.combinations(range(len(old)), 2)))
        before = np.linalg.norm(old[pairs[:, 0]] - old[pairs[:, 1]], axis=1)
        after = np.linalg.norm(new[pairs[:, 0]] - new[pairs[:, 1]], axis=1)
        scale = float(np.median(after[before > 1] / before[before > 1])) if (before > 1).any() else 1.0
        cx, cy = x + w / 2 + dx, y + h / 2 + dy
        w2, h2 = w * scale, h * scale
        box = _inside(cx - w2 / 2, cy - h2 / 2, w2, h2, width, height)
        carried.append(box)
    return carried


def _inside(x, y, w, h, width, height) -> Optional[Box]:
    """The box clipped to the frame; None when less than half of it is left."""
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 8 or y1 - y0 < 8 or (x1 - x0) * (y1 - y0) < 0.5 * w * h:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


@dataclass
class Track:
    face_id: int
    box: Box
    confidence: Optional[float] = None
    unconfirmed: int = 0  # detections since the last one that found this face
    lost_at: Optional[int] = None  # the frame the flow lost it (then it is not shown)
    probabilities: Optional[np.ndarray] = None  # smoothed, for this face
    label: Optional[int] = None  # the emotion shown (hysteresis: shown_label)


def smooth(track: Track, probabilities: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential smoothing of a face's probabilities: alpha = weight of the newest frame
    (1 = off). A face's first frame starts it."""
    if track.probabilities is None or alpha >= 1.0:
        track.probabilities = probabilities
    else:
        track.probabilities = alpha * probabilities + (1 - alpha) * track.probabilities
    return track.probabilities


def shown_label(track: Track, probabilities: np.ndarray, margin: float) -> int:
    """The class shown for a face: its smoothed argmax, but the label on show changes only
    when another class leads it by more than `margin` (hysteresis; 0 = the argmax). A face's
    first frame shows its argmax. bench/results/webcam_steadiness.md chose the defaults."""
    best = int(np.argmax(probabilities))
    if track.label is None or probabilities[best] - probabilities[track.label] > margin:
        track.label = best
    return track.label


def match_boxes(a: Sequence[Box], b: Sequence[Box], min_iou: float) -> Dict[int, int]:
    """{index in a: index in b}, best overlaps first, each used once."""
    pairs = sorted(((face_ops.iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True)
    matched: Dict[int, int] = {}
    used = set()
    for score, i, j in pairs:
        if score < min_iou:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


class LiveFaces:
    """The faces of each frame of a video, with ids that persist while a face does.

    detect_every=1: the detector runs on every frame, in the frame's own time, and ids come
    from overlap with the last frame's boxes (the reference the tracking is measured against).
    detect_every=k>1: tracks are carried by flow on every frame, and the detector runs on its
    own thread on every k-th frame, at once when a track is lost or something moves where no
    track is (never two detections at a time)."""

    def __init__(self, detector: Callable[[np.ndarray], List[Detection]], detect_every: int = 1, executor=None):
        """`executor`: where detections run when detect_every > 1 (default: a thread of
        their own; tests pass one that runs them at once, for repeatable results)."""
        self.detector = detector
        self.detect_every = max(1, detect_every)
        self.tracks: Dict[int, Track] = {}
        self._ids = itertools.count()
        self._previous: Optional[np.ndarray] = None
        self._pending: Optional[Tuple[int, np.ndarray, Future]] = None
        self._last_detection = -10 ** 9
        self._wanted = True  # detect on the first frame
        self._owns_pool = executor is None and self.detect_every > 1
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect") if self._owns_pool else executor
        self.detections_run = 0

    def close(self) -> None:
        if self._owns_pool:
            self._pool.shutdown(wait=True)

    def _detect(self, frame: np.ndarray) -> List[Detection]:
        self.detections_run += 1
        return self.detector(frame)

    def update(self, frame: np.ndarray, gray: np.ndarray, index: int) -> List[Track]:
        """The faces shown on this frame (BGR `frame`, its `gray`), in a stable order."""
        if self.detect_every == 1 or self._previous is None:
            # Every frame; or the first frame, whose faces are wanted on it, not a few frames on.
            self._merge(self._detect(frame), index)
            self._last_detection, self._wanted = index, False
        else:
            self._carry(gray, index)
            if self._pending is not None and self._pending[2].done():
                at, old_gray, future = self._pending
                self._pending = None
                found = future.result()
                boxes = carry_boxes(old_gray, gray, [d.box for d in found]) if at != index else [d.box for d in found]
                self._merge([Detection(b, d.confidence) for b, d in zip(boxes, found) if b is not None], index)
            if self._pending is None and (self._wanted or index - self._last_detection >= self.detect_every
                                          or self._moved_outside_tracks(gray)):
                self._pending = (index, gray, self._pool.submit(self._detect, frame.copy()))
                self._last_detection, self._wanted = index, False
        self._previous = gray
        for fid in [fid for fid, t in self.tracks.items() if t.lost_at is not None and index - t.lost_at > LOST_MEMORY]:
            del self.tracks[fid]
        return [t for t in self.tracks.values() if t.lost_at is None]

    def _carry(self, gray: np.ndarray, index: int) -> None:
        live = [t for t in self.tracks.values() if t.lost_at is None]
        if self._previous is None or not live:
            return
        for track, box in zip(live, carry_boxes(self._previous, gray, [t.box for t in live])):
            if box is None:
                track.lost_at, self._wanted = index, True
            else:
                track.box = box

    def _moved_outside_tracks(self, gray: np.ndarray) -> bool:
        """Whether something changed between the last frame and this one away from every
        track: where a new face may have come in."""
        if self._previous is None:
            return False
        size = (gray.shape[1] // MOTION_SCALE, gray.shape[0] // MOTION_SCALE)
        before = cv2.resize(self._previous, size, interpolation=cv2.INTER_AREA)
        after = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        moved = cv2.absdiff(before, after) > MOTION_LEVEL
        left, top, right, bottom = MOTION_MASK
        for track in self.tracks.values():
            if track.lost_at is None:
                x, y, w, h = (v / MOTION_SCALE for v in track.box)
                x0, y0 = max(0, int(x - left * w)), max(0, int(y - top * h))
                moved[y0:int(y + h + bottom * h) + 1, x0:int(x + w + right * w) + 1] = False
        return int(moved.sum()) >= (MOTION_MIN_FACE / MOTION_SCALE) ** 2

    def _merge(self, found: List[Detection], index: int) -> None:
        """Detections confirm the tracks they overlap, revive recently lost ones, start new
        ones; a track that MAX_UNCONFIRMED detections in a row did not find is dropped (with
        detection on every frame: at once)."""
        live = [t for t in self.tracks.values() if t.lost_at is None]
        matched = match_boxes([d.box for d in found], [t.box for t in live], MATCH_IOU)
        lost = [t for t in self.tracks.values() if t.lost_at is not None]
        rest = [i for i in range(len(found)) if i not in matched]
        revived = match_boxes([found[i].box for i in rest], [t.box for t in lost], MATCH_IOU / 2)
        confirmed = set()
        for i, j in matched.items():
            live[j].box, live[j].confidence, live[j].unconfirmed = found[i].box, found[i].confidence, 0
            confirmed.add(live[j].face_id)
        for k, j in revived.items():
            track = lost[j]
            track.box, track.confidence, track.unconfirmed, track.lost_at = found[rest[k]].box, found[rest[k]].confidence, 0, None
            confirmed.add(track.face_id)
        for k, i in enumerate(rest):
            if k not in revived:
                fid = next(self._ids)
                self.tracks[fid] = Track(fid, found[i].box, found[i].confidence)
                confirmed.add(fid)
        limit = 1 if self.detect_every == 1 else MAX_UNCONFIRMED
        for track in live:
            if track.face_id not in confirmed:
                track.unconfirmed += 1
                if track.unconfirmed >= limit:
                    track.lost_at = index
