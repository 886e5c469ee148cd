"""Face detectors on real faces: recall, false positives and time per frame.

Frames: 640x480, each with 1-3 FER-2013 faces from the real file (PublicTest rows, never
Training) pasted at several sizes (48-220 px), positions and backgrounds (flat gray, noise,
a gradient, and photos without faces from scikit-image), plus scikit-image's astronaut photo
(one face). A detection matches a face when its centre lies inside the face's box and their
IoU is at least MATCH_IOU (detectors draw their boxes differently: BlazeFace tight, Haar
wider); each face matches at most one detection. Recall = matched faces / faces; a false
positive is a detection that matches no face. Time: per frame, median and p95, after a
warm-up, in this process on this machine's CPU.

    .venv/bin/python bench/detector_bench.py --data ../shared/data/fer2013/fer2013.csv.gz
"""

import argparse
import json
import os
import platform
import sys
import time
from typing import List, Sequence, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

Box = Tuple[int, int, int, int]
MATCH_IOU = 0.25
FRAME = (480, 640)
SIZES = (48, 64, 96, 144, 220)
ASTRONAUT_FACE = (172, 62, 104, 104)  # x, y, w, h: the face (forehead to chin), by eye on the photo


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def match(truth: Sequence[Box], found: Sequence[Box]) -> Tuple[int, int]:
    """(faces matched, false positives): greedy by IoU, one detection per face."""
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_truth, used_found = set(), set()
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU or i in used_truth or j in used_found:
            continue
        t, f = truth[i], found[j]
        cx, cy = f[0] + f[2] / 2, f[1] + f[3] / 2
        if t[0] <= cx <= t[0] + t[2] and t[1] <= cy <= t[1] + t[3]:
            used_truth.add(i)
            used_found.add(j)
    return len(used_truth), len(found) - len(used_found)


def score(frames_truth: Sequence[Sequence[Box]], frames_found: Sequence[Sequence[Box]]) -> dict:
    faces = sum(len(t) for t in frames_truth)
    matched = false_positives = 0
    for truth, found in zip(frames_truth, frames_found):
        m, fp = match(truth, found)
        matched, false_positives = matched + m, false_positives + fp
    return {"faces": faces, "matched": matched, "recall": matched / faces if faces else 0.0,
            "false_positives": false_positives, "frames": len(frames_truth),
            "false_positives_per_frame": false_positives / len(frames_truth) if frames_truth else 0.0}


def _backgrounds(rng):
    import cv2
    from skimage import data

    height, width = FRAME
    gradient = np.tile(np.linspace(40, 220, width, dtype=np.uint8), (height, 1))
    photos = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else
                         cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), (width, height))
              for image in (data.coffee(), data.rocket(), data.chelsea(), data.camera())]
    flat = np.full((height, width, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    return [flat, noise, cv2.cvtColor(gradient, cv2.COLOR_GRAY2BGR)] + photos


def make_frames(faces: np.ndarray, count: int, seed: int = 0):
    """[(BGR frame, [face boxes])]: faces [N, 48, 48] uint8 pasted without overlap."""
    import cv2

    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds(rng)
    height, width = FRAME
    frames, next_face = [], 0
    for k in range(count):
        frame = backgrounds[k % len(backgrounds)].copy()
        boxes: List[Box] = []
        for _ in range(int(rng.integers(1, 4))):
            size = int(SIZES[(k + len(boxes)) % len(SIZES)])
            for _attempt in range(20):
                x, y = int(rng.integers(0, width - size)), int(rng.integers(0, height - size))
                box = (x, y, size, size)
                if all(iou(box, b) == 0 and not _near(box, b) for b in boxes):
                    face = cv2.resize(faces[next_face % len(faces)], (size, size), interpolation=cv2.INTER_CUBIC)
                    next_face += 1
                    frame[y:y + size, x:x + size] = face[..., None]
                    boxes.append(box)
                    break
        frames.append((frame, boxes))
    return frames


def _near(a: Box, b: Box, gap: int = 16) -> bool:
    return not (a[0] + a[2] + gap < b[0] or b[0] + b[2] + gap < a[0] or a[1] + a[3] + gap < b[1]
                or b[1] + b[3] + gap < a[1])


def public_test_faces(path: str, limit: int) -> np.ndarray:
    from components.fer_example_gen import parser
    from core import features

    faces = []
    for row in parser.FerCsvReader(path):
        if isinstance(row, parser.Row) and row.split == features.EVAL_SPLIT:  # PublicTest
            faces.append(np.asarray(row.pixels, np.uint8).reshape(48, 48))
            if len(faces) == limit:
                break
    return np.stack(faces)


def run_detector(name: str, options: dict, frames) -> dict:
    from client import detectors

    detector = detectors.make(name, **options)
    for frame, _ in frames[:3]:
        detector(frame)  # warm: graph building, interpreter allocation
    found, times = [], []
    for frame, _ in frames:
        start = time.perf_counter()
        detections = detector(frame)
        times.append(time.perf_counter() - start)
        found.append([d.box for d in detections])
    result = score([boxes for _, boxes in frames], found)
    by_size = {}
    for size in SIZES:
        truth = [[b for b in boxes if b[2] == size] for _, boxes in frames]
        by_size[size] = round(score(truth, found)["recall"], 3)
    result.update(recall_by_size=by_size, ms_p50=round(1000 * float(np.median(times)), 1),
                  ms_p95=round(1000 * float(np.percentile(times, 95)), 1))
    return result


def _option(item: str):
    key, _, value = item.partition("=")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "fer2013", "fer2013.csv.gz"))
    p.add_argument("--frames", type=int, default=210)
    p.add_argument("--detectors", default="haar,haar:detect_scale=1.0,blazeface,blazeface:model=short,mtcnn",
                   help="NAME[:OPTION=VALUE;...] list (client/detectors.py's classes and their options)")
    args = p.parse_args()
    import cv2
    from skimage import data

    faces = public_test_faces(args.data, 600)
    frames = make_frames(faces, args.frames)
    astronaut = [(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), [ASTRONAUT_FACE])]
    results = {}
    for spec in args.detectors.split(","):
        name, _, given = spec.partition(":")
        options = dict(_option(item) for item in given.split(";") if item)
        results[spec] = run_detector(name, options, frames)
        results[spec]["astronaut"] = run_detector(name, options, astronaut * 4)["recall"] == 1.0
        print(json.dumps({spec: results[spec]}), file=sys.stderr)
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "frames": len(frames), "faces": sum(len(b) for _, b in frames), "sizes_px": SIZES,
                      "match_iou": MATCH_IOU, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
