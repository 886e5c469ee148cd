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

Detections arrive for the frame they were run on, a few frames old (ten and more when the
video runs at hundreds of frames/s). A detected box that overlaps a track's box on that frame
moves as the track has moved since; any other (a new face) is carried to the current frame by
the flow, frame by frame where one step across the gap loses it. Then they are matched to the
tracks by overlap.

A track the flow loses, or whose box the face in front of it drags along, coasts on its
velocity until a detection finds its face again or, uncovered, misses it: a face that crosses
behind another one comes out where its box is, with its id.
"""

import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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
# A track the flow loses coasts: its box goes on at the track's velocity, for at most
# COAST_MAX frames, until a detection finds the face again. A detection run after the loss
# that misses it ends the coast, unless another face's head covers HIDDEN_SHARE of the box
# (a head: the face box grown by HEAD_MARGIN of its width each side, about 1.8x as wide as
# the cascade's box), and while it does the box is not shown. So a face that crosses behind
# another is shown again where it comes out, with its id, instead of when the detector next
# finds it, which is many frames later at hundreds of frames/s.
COAST_MAX = 60
HIDDEN_SHARE, HEAD_MARGIN = 0.3, 0.4
# The flow does not always lose a face that goes behind another: its points slide onto the
# face in front, which drags the box along. A track next to another whose step departs from
# its velocity by more than DRIFT (px, or this share of its width if more) coasts instead.
DRIFT_PX, DRIFT_SHARE = 2.0, 0.05
# Frames of the past kept for a detection that comes back late: each track's box on them, and
# the gray frames (references, not copies).
TRAIL = 64
MOTION_SCALE = 8  # motion is looked for on the frame shrunk this many times
MOTION_LEVEL = 25  # grey-level change that counts as motion
# Motion near a face is that person's head and body moving: the area a track masks reaches
# one face width either side, 3/4 of one above and three below.
MOTION_MASK = (1.0, 0.75, 1.0, 3.0)  # left, top, right, bottom, in face sizes
MOTION_MIN_FACE = 36  # motion must cover at least a face this wide (px) elsewhere to trigger
_LK = dict(winSize=(11, 11), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


# The grid of points in a unit box, and every pair of its points (the scale is the median
# change of their distances): built once, not per box and frame.
_UNIT_GRID = np.array([(px, py) for py in np.linspace(0.2, 0.8, GRID) for px in np.linspace(0.2, 0.8, GRID)],
                      np.float32)
_PAIRS = np.array(list(itertools.combinations(range(GRID * GRID), 2)))


def carry_boxes(previous: np.ndarray, current: np.ndarray, boxes: Sequence[Box]) -> List[Optional[Box]]:
    """Each box of the gray frame `previous` where its content is in `current` (same size),
    or None where the flow lost it."""
    if not boxes:
        return []
    corners = np.asarray(boxes, np.float32)
    points = (corners[:, None, :2] + corners[:, None, 2:] * _UNIT_GRID).reshape(-1, 1, 2)
    forward, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, **_LK)
    backward, status_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, forward, None, **_LK)
    error = np.linalg.norm((backward - points).reshape(-1, 2), axis=1)
    good = ((status.ravel() == 1) & (status_back.ravel() == 1) & (error < FB_MAX_PX)).reshape(len(boxes), -1)
    points, forward = points.reshape(len(boxes), -1, 2), forward.reshape(len(boxes), -1, 2)
    height, width = current.shape[:2]
    carried: List[Optional[Box]] = []
    for i, (x, y, w, h) in enumerate(boxes):
        keep = good[i]
        if keep.mean() < MIN_POINTS:
            carried.append(None)
            continue
        old, new = points[i], forward[i]
        dx, dy = np.median(new[keep] - old[keep], axis=0)
        pairs = _PAIRS[keep[_PAIRS[:, 0]] & keep[_PAIRS[:, 1]]]
        before = np.linalg.norm(old[pairs[:, 0]] - old[pairs[:, 1]], axis=1)
        after = np.linalg.norm(new[pairs[:, 0]] - new[pairs[:, 1]], axis=1)
        apart = before > 1
        scale = float(np.median(after[apart] / before[apart])) if apart.any() else 1.0
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
    lost_at: Optional[int] = None  # the frame it was given up (then it is not shown)
    coast_from: Optional[int] = None  # the frame the flow lost it (then its box coasts)
    velocity: Optional[Tuple[float, float]] = None  # px a frame, from the flow's carries (None: none yet)
    probabilities: Optional[np.ndarray] = None  # smoothed, for this face
    label: Optional[int] = None  # the emotion shown (hysteresis: shown_label)
    trail: deque = field(default_factory=lambda: deque(maxlen=TRAIL))  # (frame, box) of recent frames

    def box_at(self, index: int) -> Box:
        """The track's box on that frame (its current one if the trail does not go back so far)."""
        return next((box for at, box in self.trail if at == index), self.box)


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
        self._grays: deque = deque(maxlen=TRAIL)  # (frame, gray) of recent frames
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
            self._merge(self._detect(frame), index, index)
            self._last_detection, self._wanted = index, False
        else:
            self._carry(gray, index)
            self._grays.append((index, gray))
            if self._pending is not None and self._pending[2].done():
                at, old_gray, future = self._pending
                self._pending = None
                found = future.result()
                boxes = self._bring_forward([d.box for d in found], at, gray) if at != index else [d.box for d in found]
                self._merge([Detection(b, d.confidence) for b, d in zip(boxes, found) if b is not None], index, at)
            if self._pending is None and (self._wanted or index - self._last_detection >= self.detect_every
                                          or self._moved_outside_tracks(gray)):
                self._pending = (index, gray, self._pool.submit(self._detect, frame.copy()))
                self._last_detection, self._wanted = index, False
        self._previous = gray
        for track in self.tracks.values():
            if track.lost_at is None:
                track.trail.append((index, track.box))
        for fid in [fid for fid, t in self.tracks.items() if t.lost_at is not None and index - t.lost_at > LOST_MEMORY]:
            del self.tracks[fid]
        live = [t for t in self.tracks.values() if t.lost_at is None]
        flowing = [t for t in live if t.coast_from is None]
        return [t for t in live if t.coast_from is None or not self._behind_someone(t, flowing)]

    def _bring_forward(self, boxes: List[Box], at: int, gray: np.ndarray) -> List[Optional[Box]]:
        """Boxes the detector found on frame `at`, where they are on the frame `gray`. A box
        that overlaps a track's box on frame `at` moves as that track moved since; any other
        (a new face) is carried by flow, in one step, or frame by frame where one step across
        many frames loses it (the detector can take ten frames and more at hundreds of
        frames/s). A detection older than the frames kept (TRAIL) cannot be placed: all None,
        and the next detection finds the faces again."""
        if not self._grays or self._grays[0][0] > at:
            return [None] * len(boxes)
        height, width = gray.shape[:2]
        live = [t for t in self.tracks.values() if t.lost_at is None]
        then = [t.box_at(at) for t in live]
        matched = match_boxes(boxes, then, MATCH_IOU)
        result: List[Optional[Box]] = [None] * len(boxes)
        for i, j in matched.items():
            (x, y, w, h), (tx, ty, tw, th), (nx, ny, nw, nh) = boxes[i], then[j], live[j].box
            scale = nw / tw if tw else 1.0
            cx, cy = x + w / 2 + (nx + nw / 2) - (tx + tw / 2), y + h / 2 + (ny + nh / 2) - (ty + th / 2)
            result[i] = _inside(cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale, width, height)
        rest = [i for i in range(len(boxes)) if i not in matched]
        frames = [g for k, g in self._grays if k >= at]
        if rest and len(frames) >= 2:
            jumped = carry_boxes(frames[0], gray, [boxes[i] for i in rest])
            for i, box in zip(rest, jumped):
                result[i] = box
            lost = [i for i, box in zip(rest, jumped) if box is None]
            stepped = [boxes[i] for i in lost]
            for before, after in zip(frames, frames[1:]):
                alive = [k for k, box in enumerate(stepped) if box is not None]
                if not alive:
                    break
                for k, box in zip(alive, carry_boxes(before, after, [stepped[k] for k in alive])):
                    stepped[k] = box
            for i, box in zip(lost, stepped):
                result[i] = box
        return result

    @staticmethod
    def _behind_someone(track: Track, flowing: Sequence[Track]) -> bool:
        """Whether another track the flow carries covers HIDDEN_SHARE of the box with its
        head (its face box grown by HEAD_MARGIN of its width on every side)."""
        x, y, w, h = track.box
        for other in flowing:
            if other is track:
                continue
            ox, oy, ow, oh = other.box
            m = HEAD_MARGIN * ow
            ix = max(0.0, min(x + w, ox + ow + m) - max(x, ox - m))
            iy = max(0.0, min(y + h, oy + oh + m) - max(y, oy - m))
            if ix * iy >= HIDDEN_SHARE * w * h:
                return True
        return False

    def _carry(self, gray: np.ndarray, index: int) -> None:
        live = [t for t in self.tracks.values() if t.lost_at is None]
        if self._previous is None or not live:
            return
        flowing = [t for t in live if t.coast_from is None]
        carried = carry_boxes(self._previous, gray, [t.box for t in flowing])
        for track, box in zip(flowing, carried):
            if box is not None:
                (x, y, w, h), (x2, y2, w2, h2) = track.box, box
                step = (x2 + w2 / 2 - x - w / 2, y2 + h2 / 2 - y - h / 2)
                beside = any(face_ops.iou(track.box, other.box) > 0 for other in flowing if other is not track)
                v = track.velocity
                if v is not None and beside and max(abs(step[0] - v[0]), abs(step[1] - v[1])) > max(
                        DRIFT_PX, DRIFT_SHARE * w):
                    box = None  # dragged by the face in front of it
                else:
                    track.velocity = step if v is None else (0.5 * (v[0] + step[0]), 0.5 * (v[1] + step[1]))
                    track.box = box
            if box is None:
                track.coast_from, self._wanted = index, True
        height, width = gray.shape[:2]
        for track in live:
            if track.coast_from is not None:
                (x, y, w, h), (vx, vy) = track.box, track.velocity or (0.0, 0.0)
                box = _inside(x + vx, y + vy, w, h, width, height)
                if box is None or index - track.coast_from > COAST_MAX:
                    track.lost_at, track.coast_from = index, None  # out of the frame, or too long
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

    def _merge(self, found: List[Detection], index: int, at: int) -> None:
        """Detections (run on frame `at`, carried to frame `index`) confirm the tracks they
        overlap, revive recently lost ones, start new ones; a track that MAX_UNCONFIRMED
        detections in a row did not find is dropped (with detection on every frame: at
        once), and so is a coasting one that a detection run since the loss did not find,
        unless another face covers it."""
        live = [t for t in self.tracks.values() if t.lost_at is None]
        matched = match_boxes([d.box for d in found], [t.box for t in live], MATCH_IOU)
        lost = [t for t in self.tracks.values() if t.lost_at is not None]
        rest = [i for i in range(len(found)) if i not in matched]
        revived = match_boxes([found[i].box for i in rest], [t.box for t in lost], MATCH_IOU / 2)
        confirmed = set()
        for i, j in matched.items():
            live[j].box, live[j].confidence, live[j].unconfirmed = found[i].box, found[i].confidence, 0
            live[j].coast_from = None
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
        flowing = [t for t in live if t.coast_from is None]
        for track in live:
            if track.face_id in confirmed:
                continue
            if track.coast_from is not None:
                if track.coast_from <= at and not self._behind_someone(track, flowing):
                    track.lost_at, track.coast_from = index, None
            else:
                track.unconfirmed += 1
                if track.unconfirmed >= limit:
                    track.lost_at = index
