"""Steadiness of fer-webcam's shown emotion (issue 22, item 2): flicker against reaction time
and accuracy, per smoothing rule, on a generated video whose labels are known.

The video (written to a temporary folder, never into the repository): 640x480, 30 frames/s,
60 s, four face slots. Each slot shows one FER-2013 face from the real file (--faces: the
`valid` carve of Training, which selects the defaults, or PublicTest, which reports them;
never the rows the model trained on) upscaled to 96-128 px (INTER_CUBIC) on a blurred-noise background,
held for 2-5 s (one true label), then another face of another class. Slots sway on smooth
sub-pixel paths (so every crop differs), slots 0 and 1 cross once (slot 1 passes in front of
slot 0 between 25 and 35 s), slot 3 slides in from the right at 18 s and out at the bottom
around 41 s. Per frame: sensor noise (Gaussian, sigma 4 grey levels), a brightness gain
that drifts and jitters (+-3 % slow, 1 % per frame), then MJPG compression (the video is
written with cv2.VideoWriter MJPG at quality 75 and read back by fer-webcam's own source).
Ground truth per frame and slot: the pasted face's box and its label; a face counts as
present when at least 70 % of its box is visible (inside the frame, not covered by a face
drawn over it).

The run: fer-webcam's WebcamRunner with the shipped model in-process (InProcessEngine, by
default its default engine: the int8 TFLite twin where the model has one; --engine), an
ORACLE detector that returns the true boxes of the frame it is given (FER crops are tight:
fer-webcam's live cascade finds only part of them, 54-74 % in bench/results/detectors.md, and
this script measures it on the first video, `haar_live_recall`; an oracle keeps detection
misses out of a measurement of smoothing), through LiveFaces in two
modes: detect_every=1 (the oracle's boxes on every frame) and the live default
detect_every=4 (boxes carried by optical flow between detections, ids kept by the tracker;
detections run at once on submit, for repeatable results, as tests/client/test_tracking.py
does). The runner keeps each face's raw probabilities; every smoothing rule is then replayed
on them per face id, in frame order (the EMA through client.tracking.smooth itself, the
function the runner calls; the runner's own smoothed output at --check-alpha is compared with
the replay to show the replay is the runner's arithmetic).

Metrics (shown faces matched to the truth by IoU >= 0.3, greedy, best first):
- accuracy: shown top-1 == true label, over matched face-frames (the whole video);
  accuracy_steady: the same from SETTLE_S after each change on (what lag does not cost);
- flicker: changes of the shown top-1 per face per second, counted between consecutive
  matched frames of one face inside one true-label segment, from SETTLE_S after its start;
- reaction: per true change (a segment directly after another), the seconds until the shown
  top-1 first equals the label the UNSMOOTHED model gives most often on the new segment (the
  model can be wrong on a face; this is the label it can show); a frame where the face is
  not shown (the flow lost its box) does not follow.
  Median and p90. Changes whose target is the model's label on the old segment too (it sees
  no change) are counted apart, and so are changes the shown label never follows before the
  segment ends ("never").

Rules: `ema` (the shipped one: q = a p + (1-a) q_prev; a = 1 is off), `hyst` (the EMA, then
hysteresis on the shown label: it changes to the smoothed top-1 class c only when
q[c] - q[shown] > margin) and `dwell` (the EMA, then the label changes once a new class has
been the smoothed top-1 for k frames in a row). All per frame, so their time constants hold at
the frame rate they ran at (30 frames/s here): a per frame is 1 - exp(-1/(30 tau)).

Output: one JSON line; `pooled` adds the tallies of all seeds per detect_every (the table of
bench/results/webcam_steadiness.md), `runs` has each seed's metrics (`run_columns`).

    .venv/bin/python bench/webcam_steadiness.py --data /work/shared/data/fer2013/fer2013.csv.gz \
        --seeds 0 1 2 3 4 5 6 7                     # select: the valid carve's faces
    .venv/bin/python bench/webcam_steadiness.py --data /work/shared/data/fer2013/fer2013.csv.gz \
        --seeds 0 1 2 3 4 5 6 7 --faces PublicTest  # report the chosen default
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from client import tracking  # noqa: E402  (cv2 and numpy only)

Box = Tuple[int, int, int, int]
SIZE = (640, 480)
FPS = 30.0
SECONDS = 60.0
MATCH_IOU = 0.3
VISIBLE = 0.7  # share of a face's box that must be visible for it to count as present
SETTLE_S = 0.3  # flicker is not counted this long after a true change
SLOT_SIZES = (112, 104, 96, 128)
HOLD_S = (2.0, 5.0)
EMA_ALPHAS = (1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1)
HYSTERESIS = [(a, m) for a in (1.0, 0.7, 0.5, 0.4, 0.3) for m in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)]
DWELL = [(a, k) for a in (1.0, 0.7, 0.5) for k in (3, 5, 8)]


# ---------------------------------------------------------------- metrics (pure functions)

def match(truth: Sequence[Box], shown: Sequence[Box], min_iou: float = MATCH_IOU) -> Dict[int, int]:
    """{index in truth: index in shown}, best overlaps first, each used once (the tracker's own
    matcher)."""
    return tracking.match_boxes(truth, shown, min_iou)


def segments(segment_ids: Sequence[int]) -> List[Tuple[int, int, int]]:
    """(segment id, first frame, end frame) of each run of one id (-1: face absent)."""
    out, start = [], 0
    ids = list(segment_ids)
    for f in range(1, len(ids) + 1):
        if f == len(ids) or ids[f] != ids[start]:
            if ids[start] >= 0:
                out.append((ids[start], start, f))
            start = f
    return out


def accuracy(shown: Sequence[int], true: Sequence[int]) -> Tuple[int, int]:
    """(correct, counted): frames where the face is present (true >= 0) and shown (>= 0)."""
    pairs = [(s, t) for s, t in zip(shown, true) if s >= 0 and t >= 0]
    return sum(s == t for s, t in pairs), len(pairs)


def flicker(shown: Sequence[int], segment_ids: Sequence[int], segment_start: Dict[int, int], fps: float,
            settle_s: float = SETTLE_S) -> Tuple[int, float]:
    """(changes, seconds): changes of the shown label between consecutive frames that are both
    shown, in one segment, at least settle_s after its start; seconds = such frame pairs / fps."""
    settle = int(round(settle_s * fps))
    changes = pairs = 0
    for f in range(1, len(shown)):
        seg = segment_ids[f]
        if seg < 0 or segment_ids[f - 1] != seg or shown[f] < 0 or shown[f - 1] < 0:
            continue
        if f - 1 - segment_start[seg] < settle:
            continue
        pairs += 1
        changes += int(shown[f] != shown[f - 1])
    return changes, pairs / fps


def mode(labels: Sequence[int]) -> int:
    labels = [l for l in labels if l >= 0]
    return int(np.bincount(labels).argmax()) if labels else -1


def reactions(shown: Sequence[int], raw: Sequence[int], segment_ids: Sequence[int], fps: float) -> Dict[str, list]:
    """Per true change (a segment directly after another): seconds from its first frame until
    the shown label first equals the model's most frequent raw label on the new segment
    (frames where the face is not shown count as not following). Returns {"seconds": [...],
    "never": n, "no_change": n (the model's label is the same on both segments), "not_shown":
    n (changes at whose first frame the face was not shown; counted in the others too)}."""
    out = {"seconds": [], "never": 0, "no_change": 0, "not_shown": 0}
    segs = segments(segment_ids)
    for (prev, p0, p1), (seg, s0, s1) in zip(segs, segs[1:]):
        if p1 != s0:
            continue  # the face was away in between: no change seen live
        target, before = mode(raw[s0:s1]), mode(raw[p0:p1])
        out["not_shown"] += int(shown[s0] < 0)  # e.g. the flow lost the box as the face changed
        if target < 0:
            out["never"] += 1
        elif target == before:
            out["no_change"] += 1
        else:
            hit = next((f for f in range(s0, s1) if shown[f] == target), None)
            if hit is None:
                out["never"] += 1
            else:
                out["seconds"].append((hit - s0) / fps)
    return out


# ---------------------------------------------------------------- smoothing rules

class Ema:
    """The shipped rule (client.tracking.smooth), per face id; label = top-1."""

    def __init__(self, alpha: float):
        from client import tracking

        self.alpha, self._tracking, self.tracks = alpha, tracking, {}

    def step(self, face_id: int, p: np.ndarray) -> Tuple[np.ndarray, int]:
        track = self.tracks.setdefault(face_id, self._tracking.Track(face_id, (0, 0, 0, 0)))
        q = self._tracking.smooth(track, p, self.alpha)
        return q, int(np.argmax(q))


class Hysteresis(Ema):
    """The EMA, then the shown label moves to the smoothed top-1 class c only when
    q[c] - q[shown] > margin (a face's first frame shows its top-1)."""

    def __init__(self, alpha: float, margin: float):
        super().__init__(alpha)
        self.margin, self.labels = margin, {}

    def step(self, face_id: int, p: np.ndarray) -> Tuple[np.ndarray, int]:
        q, top = super().step(face_id, p)
        label = self.labels.get(face_id)
        if label is None or q[top] - q[label] > self.margin:
            label = top
        self.labels[face_id] = label
        return q, label


class Dwell(Ema):
    """The EMA, then the shown label moves to a new smoothed top-1 class only once that class
    has been the smoothed top-1 for `frames` frames in a row."""

    def __init__(self, alpha: float, frames: int):
        super().__init__(alpha)
        self.frames, self.labels, self.runs = frames, {}, {}

    def step(self, face_id: int, p: np.ndarray) -> Tuple[np.ndarray, int]:
        q, top = super().step(face_id, p)
        candidate, run = self.runs.get(face_id, (top, 0))
        run = run + 1 if candidate == top else 1
        self.runs[face_id] = (top, run)
        label = self.labels.get(face_id)
        if label is None or run >= self.frames:
            label = top
        self.labels[face_id] = label
        return q, label


def rules():
    out = [(f"ema a={a:g}", lambda a=a: Ema(a)) for a in EMA_ALPHAS]
    out += [(f"hyst a={a:g} m={m:g}", lambda a=a, m=m: Hysteresis(a, m)) for a, m in HYSTERESIS]
    out += [(f"dwell a={a:g} k={k}", lambda a=a, k=k: Dwell(a, k)) for a, k in DWELL]
    return out


# ---------------------------------------------------------------- the video

# Where the faces come from: the valid carve selects a default (the split that selected the
# shipped model), PublicTest reports it (never selects).
FACES = ("valid", "PublicTest")


def load_faces(path: str, faces: str) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 faces [N, 48, 48] and their labels, read by the ExampleGen's own parser (the carve
    is the rows it puts in `valid`)."""
    from tools import evaluate

    labels, images, _ = evaluate.read_usage(path, faces)
    return images.reshape(-1, 48, 48), labels


def _position(slot: int, t: float) -> Optional[Tuple[float, float]]:
    """Top-left corner of a slot's face at time t (None: not in the video at all)."""
    sway_x = 5 * np.sin(2 * np.pi * t / (3.1 + slot)) + 2 * np.sin(2 * np.pi * t / 0.9)
    sway_y = 4 * np.sin(2 * np.pi * t / (2.3 + slot)) + 1.5 * np.cos(2 * np.pi * t / 1.3)
    if slot in (0, 1):
        u = min(1.0, max(0.0, (t - 25.0) / 10.0))  # cross between 25 and 35 s
        left, right = 50.0, 470.0
        x = left + (right - left) * u if slot == 0 else right - (right - left) * u
        y = 50.0 if slot == 0 else 95.0
        return x + sway_x, y + sway_y
    if slot == 2:
        return 120 + 60 * np.sin(2 * np.pi * t / 11) + sway_x, 300 + 30 * np.sin(2 * np.pi * t / 7) + sway_y
    # slot 3: in from the right (18-20 s), wanders, out at the bottom (40-42 s)
    if t < 18.0 or t > 42.0:
        return None
    x, y = 480.0, 250.0
    if t < 20.0:
        x = SIZE[0] + (x - SIZE[0]) * (t - 18.0) / 2.0
    if t > 40.0:
        y = y + (SIZE[1] + 10 - y) * (t - 40.0) / 2.0
    return x + 30 * np.sin(2 * np.pi * (t - 18) / 9) + sway_x, y + sway_y


def schedule(rng, labels: np.ndarray, frames: int) -> List[List[Tuple[int, int, int]]]:
    """Per slot: (first frame, end frame, face index) of each held face, 2-5 s each,
    each of another class than the one before; indices never reused."""
    used, out = set(), []
    for slot in range(len(SLOT_SIZES)):
        start = int(18.0 * FPS) if slot == 3 else 0
        end = int(42.0 * FPS) + 1 if slot == 3 else frames
        plan, previous = [], -1
        while start < end:
            length = int(round(rng.uniform(*HOLD_S) * FPS))
            while True:
                i = int(rng.integers(len(labels)))
                if i not in used and labels[i] != previous:
                    break
            used.add(i)
            plan.append((start, min(end, start + length), i))
            previous, start = labels[i], start + length
        out.append(plan)
    return out


def write_video(path: str, images: np.ndarray, labels: np.ndarray, seed: int, seconds: float = SECONDS):
    """The video at `path` (MJPG) and its truth: per frame a list of (slot, box, label,
    segment id) of the faces present."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = int(round(seconds * FPS))
    plans = schedule(rng, labels, frames)
    seg_of = []  # per slot: per frame, (segment id, image index) or None
    segment_count = 0
    for plan in plans:
        per_frame = [None] * frames
        for s0, s1, i in plan:
            for f in range(s0, min(s1, frames)):
                per_frame[f] = (segment_count, i)
            segment_count += 1
        seg_of.append(per_frame)
    width, height = SIZE
    background = cv2.GaussianBlur(rng.integers(40, 200, (height, width, 3), dtype=np.uint8), (0, 0), 9)
    background = background.astype(np.float32)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 75)
    patches: Dict[Tuple[int, int], np.ndarray] = {}
    truth = []
    for f in range(frames):
        t = f / FPS
        frame = background.copy()
        placed = []  # (slot, x0, y0, size), in drawing order
        for slot, size in enumerate(SLOT_SIZES):
            where, pos = seg_of[slot][f], _position(slot, t)
            if where is None or pos is None:
                continue
            key = (where[1], size)
            if key not in patches:
                patches[key] = cv2.resize(images[where[1]], (size, size),
                                          interpolation=cv2.INTER_CUBIC).astype(np.float32)
            x, y = pos
            ix, iy = int(np.floor(x)), int(np.floor(y))
            # the sub-pixel part by an affine shift into a canvas one pixel larger
            shift = np.float32([[1, 0, x - ix], [0, 1, y - iy]])
            canvas = cv2.warpAffine(patches[key], shift, (size + 1, size + 1), flags=cv2.INTER_LINEAR)
            cover = cv2.warpAffine(np.ones((size, size), np.float32), shift, (size + 1, size + 1),
                                   flags=cv2.INTER_LINEAR)
            x0, y0, x1, y1 = max(ix, 0), max(iy, 0), min(ix + size + 1, width), min(iy + size + 1, height)
            if x1 > x0 and y1 > y0:
                c = canvas[y0 - iy:y1 - iy, x0 - ix:x1 - ix, None]
                m = cover[y0 - iy:y1 - iy, x0 - ix:x1 - ix, None]
                frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - m) + c * m
            placed.append((slot, int(round(x)), int(round(y)), size, where))
        present = []
        for k, (slot, x, y, size, where) in enumerate(placed):
            visible = np.zeros((size, size), bool)
            vx0, vy0, vx1, vy1 = max(0, -x), max(0, -y), min(size, width - x), min(size, height - y)
            if vx1 > vx0 and vy1 > vy0:
                visible[vy0:vy1, vx0:vx1] = True
            for _, ox, oy, osize, _ in placed[k + 1:]:
                cx0, cy0 = max(ox - x, 0), max(oy - y, 0)
                cx1, cy1 = min(ox + osize - x, size), min(oy + osize - y, size)
                if cx1 > cx0 and cy1 > cy0:
                    visible[cy0:cy1, cx0:cx1] = False
            if visible.mean() >= VISIBLE:
                bx0, by0 = max(x, 0), max(y, 0)
                box = (bx0, by0, min(x + size, width) - bx0, min(y + size, height) - by0)
                present.append((slot, box, int(labels[where[1]]), where[0]))
        truth.append(present)
        gain = 1.0 + 0.03 * np.sin(2 * np.pi * t / 5.0) + rng.normal(0, 0.01)
        frame = frame * np.float32(gain) + rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(4.0)
        writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    return truth, segment_count


# ---------------------------------------------------------------- the run

class AtOnce:
    """An executor that runs each task when it is submitted (repeatable detection)."""

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


def run_webcam(engine, video: str, truth, detect_every: int, check_alpha: float):
    """WebcamRunner on the video with an oracle detector; its FrameResults."""
    from client import tracking, webcam
    from client.detectors import Detection

    current = {"index": -1}

    def oracle(frame):
        return [Detection(box, 1.0) for _, box, _, _ in truth[current["index"]]]

    def frames():
        for index, item in enumerate(webcam.open_source(video).frames):
            current["index"] = index
            yield item

    runner = webcam.WebcamRunner(engine, smoothing=check_alpha, detect_every=detect_every, detector=oracle)
    runner.faces.close()
    runner.faces = tracking.LiveFaces(oracle, runner.detect_every, executor=AtOnce())
    started = time.perf_counter()
    stats = runner.run(frames())
    return stats, time.perf_counter() - started


def evaluate(stats, truth, check_alpha: float) -> dict:
    """Per rule, the tallies the metrics are made of (summarise() turns them into metrics; the
    tallies of several runs add up)."""
    n_slots, frames = len(SLOT_SIZES), len(truth)
    true = np.full((n_slots, frames), -1)
    seg = np.full((n_slots, frames), -1)
    ids = np.full((n_slots, frames), -1)
    matched = {}  # (slot, frame) -> index of the shown face
    for f, (present, result) in enumerate(zip(truth, stats.frames)):
        for slot, _, label, segment in present:
            true[slot, f], seg[slot, f] = label, segment
        for i, j in match([b for _, b, _, _ in present], result.boxes).items():
            matched[(present[i][0], f)] = j
            ids[present[i][0], f] = result.face_ids[j]
    seg_start = {}
    for s in range(n_slots):
        for f in range(frames):
            if seg[s, f] >= 0 and seg[s, f] not in seg_start:
                seg_start[seg[s, f]] = f
    settle = int(round(SETTLE_S * FPS))
    steady = np.array([[seg[s, f] >= 0 and f - seg_start[seg[s, f]] >= settle for f in range(frames)]
                       for s in range(n_slots)])
    # the replay check: the runner's own smoothed output against tracking.smooth replayed
    replay, worst = Ema(check_alpha), 0.0
    for result in stats.frames:
        if result.probabilities is None:
            continue
        for fid, p, q in zip(result.face_ids, result.raw_probabilities, result.probabilities):
            worst = max(worst, float(np.abs(replay.step(fid, p)[0] - q).max()))
    raw_top = np.full((n_slots, frames), -1)
    for (s, f), j in matched.items():
        raw_top[s, f] = int(np.argmax(stats.frames[f].raw_probabilities[j]))
    # whether a face keeps its id (and so its smoothing state) across a true change
    kept = changed = 0
    for s in range(n_slots):
        segs = segments(seg[s])
        for (_, p0, p1), (_, s0, s1) in zip(segs, segs[1:]):
            if p1 != s0:
                continue
            before = [i for i in ids[s, p0:p1] if i >= 0]
            after = [i for i in ids[s, s0:s1] if i >= 0]
            if before and after:
                kept, changed = kept + (before[-1] == after[0]), changed + (before[-1] != after[0])
    out = {"face_frames": int((true >= 0).sum()), "matched_face_frames": len(matched),
           "replay_max_abs_diff": worst, "ids_kept_at_changes": int(kept), "ids_changed_at_changes": int(changed),
           "tallies": {}}
    for name, make in rules():
        rule = make()
        shown = np.full((n_slots, frames), -1)
        for f, result in enumerate(stats.frames):
            labels = {}
            if result.probabilities is not None:
                for j, (fid, p) in enumerate(zip(result.face_ids, result.raw_probabilities)):
                    labels[j] = rule.step(fid, p)[1]
            for s in range(n_slots):
                if (s, f) in matched:
                    shown[s, f] = labels[matched[(s, f)]]
        tally = {"correct": 0, "counted": 0, "steady_correct": 0, "steady_counted": 0, "changes": 0,
                 "seconds": 0.0, "reactions": [], "never": 0, "no_change": 0, "not_shown": 0}
        for s in range(n_slots):
            c, n = accuracy(shown[s], true[s])
            tally["correct"] += c
            tally["counted"] += n
            c, n = accuracy(np.where(steady[s], shown[s], -1), true[s])
            tally["steady_correct"] += c
            tally["steady_counted"] += n
            ch, sec = flicker(shown[s], seg[s], seg_start, FPS)
            tally["changes"] += ch
            tally["seconds"] += sec
            r = reactions(shown[s], raw_top[s], seg[s], FPS)
            tally["reactions"] += r["seconds"]
            for k in ("never", "no_change", "not_shown"):
                tally[k] += r[k]
        out["tallies"][name] = tally
    return out


def summarise(tallies: List[dict], full: bool) -> dict:
    """Metrics from the tallies of one run or several added up."""
    t = {k: sum(x[k] for x in tallies) for k in ("correct", "counted", "steady_correct", "steady_counted",
                                                  "changes", "seconds", "never", "no_change", "not_shown")}
    times = [r for x in tallies for r in x["reactions"]]
    r4 = lambda v: None if v is None else round(float(v), 4)
    out = {"accuracy": r4(t["correct"] / t["counted"]),
           "accuracy_steady": r4(t["steady_correct"] / t["steady_counted"]),
           "flicker_per_s": r4(t["changes"] / t["seconds"]),
           "reaction_median_s": r4(np.median(times)) if times else None,
           "reaction_p90_s": r4(np.percentile(times, 90)) if times else None,
           "never": t["never"]}
    if full:
        out.update({"face_frames": t["counted"], "flicker_changes": int(t["changes"]),
                    "flicker_face_s": r4(t["seconds"]), "reaction_max_s": r4(max(times)) if times else None,
                    "changes_followed": len(times), "changes_model_sees_none": t["no_change"],
                    "changes_not_shown_at_first_frame": t["not_shown"]})
    return out


RAW_RULE = "ema a=1"
# The goals of a smoothing rule against the raw output of the same run (issue 22, item 2).
FLICKER_SHARE, REACTION_P90_S, ACCURACY_LOSS = 0.2, 0.3, 0.01


def goals_met(metrics: dict, raw: dict) -> str:
    """'FRA' with '-' for each goal missed: flicker <= 0.2x raw's, reaction p90 <= 0.3 s,
    accuracy >= raw's - 1 point."""
    flicker_ok = metrics["flicker_per_s"] <= FLICKER_SHARE * raw["flicker_per_s"]
    reaction_ok = metrics["reaction_p90_s"] is not None and metrics["reaction_p90_s"] <= REACTION_P90_S
    accuracy_ok = metrics["accuracy"] >= raw["accuracy"] - ACCURACY_LOSS
    return "".join(c if ok else "-" for c, ok in zip("FRA", (flicker_ok, reaction_ok, accuracy_ok)))


def table(result: dict, detect_every: int) -> str:
    """A markdown table of one mode of a run's output (this script's JSON line): each rule
    pooled over the videos, the goals it meets, and in how many videos it meets all three."""
    pooled = result["pooled"][f"detect_every={detect_every}"]
    raw = pooled[RAW_RULE]
    runs = [r for r in result["runs"] if r["detect_every"] == detect_every]
    columns = result["run_columns"]
    lines = ["| rule | accuracy % (vs raw) | steady acc % | flicker /face/s (x raw) | reaction median / p90 s "
             "| never | goals met | videos meeting all three |", "|---|---|---|---|---|---|---|---|"]
    seconds = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731  (no change followed)
    for name, metrics in pooled.items():
        per_video = sum(goals_met(dict(zip(columns, run["rules"][name])),
                                  dict(zip(columns, run["rules"][RAW_RULE]))) == "FRA" for run in runs)
        share = (f"{metrics['flicker_per_s'] / raw['flicker_per_s']:.2f}" if raw["flicker_per_s"] else "—")
        lines.append(
            f"| {name} | {100 * metrics['accuracy']:.2f} ({100 * (metrics['accuracy'] - raw['accuracy']):+.2f}) "
            f"| {100 * metrics['accuracy_steady']:.2f} | {metrics['flicker_per_s']:.3f} ({share}) "
            f"| {seconds(metrics['reaction_median_s'])} / {seconds(metrics['reaction_p90_s'])} | {metrics['never']} "
            f"| {goals_met(metrics, raw)} | {per_video} of {len(runs)} |")
    return "\n".join(lines)


def haar_recall(video: str, truth, every: int = 10) -> dict:
    """fer-webcam's live detector on every `every`-th frame: the share of present faces it finds
    (IoU >= MATCH_IOU), to say why the measurement uses an oracle."""
    from client import webcam

    detector, found, faces = webcam.live_detector(), 0, 0
    for index, (frame, _, _) in enumerate(webcam.open_source(video).frames):
        if index % every:
            continue
        boxes = [b for _, b, _, _ in truth[index]]
        found += len(match(boxes, [d.box for d in detector(frame)]))
        faces += len(boxes)
    return {"frames_every": every, "faces": faces, "found": found, "recall": round(found / faces, 4)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data/fer2013/fer2013.csv.gz")
    p.add_argument("--faces", default="valid", choices=FACES,
                   help="the faces shown: the valid carve (selects the defaults) or PublicTest (reports them; "
                        "default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--seconds", type=float, default=SECONDS)
    p.add_argument("--detect-every", type=int, nargs="+", default=[1, 4])
    p.add_argument("--engine", default="auto", choices=("auto", "tflite", "savedmodel"),
                   help="InProcessEngine's engine (default: %(default)s, fer-webcam's: the int8 TFLite twin "
                        "where the model has one)")
    p.add_argument("--check-alpha", type=float, default=0.3,
                   help="the runner's own smoothing, compared with the replay (default: %(default)s)")
    p.add_argument("--table", metavar="OUTPUT",
                   help="print the markdown tables of a run's output (its last JSON line) and exit")
    args = p.parse_args()
    if args.table:
        with open(args.table) as f:
            result = json.loads([line for line in f if line.startswith("{")][-1])
        for every in sorted({r["detect_every"] for r in result["runs"]}, reverse=True):
            print(f"#### detect_every={every}, faces: {result.get('faces', 'PublicTest')}, model: {result['model']}\n")
            print(table(result, every) + "\n")
        return

    from core import quiet

    quiet.quiet_imports()
    from client import webcam

    images, labels = load_faces(args.data, args.faces)
    engine = webcam.InProcessEngine(engine=args.engine)
    engine.predict(images[:4])  # warm-up
    runs, haar = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            video = os.path.join(tmp, f"steadiness_{seed}.avi")
            started = time.perf_counter()
            truth, segment_count = write_video(video, images, labels, seed, args.seconds)
            made = time.perf_counter() - started
            if haar is None:
                haar = dict(haar_recall(video, truth), seed=seed)
            for every in args.detect_every:
                stats, took = run_webcam(engine, video, truth, every, args.check_alpha)
                result = evaluate(stats, truth, args.check_alpha)
                result.update({"seed": seed, "detect_every": every, "frames": len(stats.frames),
                               "segments": segment_count, "video_s": round(made, 1), "run_s": round(took, 1),
                               "detections_run": stats.detections})
                runs.append(result)
                print(json.dumps({"seed": seed, "detect_every": every, "run_s": round(took, 1),
                                  "replay_max_abs_diff": result["replay_max_abs_diff"]}), file=sys.stderr)
    engine.close()
    try:
        model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next((l.split(":", 1)[1].strip() for l in model.splitlines() if l.startswith("Model name")), "")
    except OSError:
        cpu = ""
    pooled = {}
    for every in args.detect_every:
        mine = [r for r in runs if r["detect_every"] == every]
        pooled[f"detect_every={every}"] = {name: summarise([r["tallies"][name] for r in mine], True)
                                           for name, _ in rules()}
    per_run = []
    for r in runs:
        row = {k: v for k, v in r.items() if k != "tallies"}
        row["rules"] = {name: list(summarise([t], False).values()) for name, t in r["tallies"].items()}
        per_run.append(row)
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu}", "fps": FPS,
                      "seconds": args.seconds, "seeds": args.seeds, "faces": args.faces, "model": engine.target, "match_iou": MATCH_IOU,
                      "settle_s": SETTLE_S, "haar_live_recall": haar, "pooled": pooled,
                      "run_columns": list(summarise([runs[0]["tallies"]["ema a=1"]], False)), "runs": per_run}))


if __name__ == "__main__":
    main()
