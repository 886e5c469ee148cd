"""Synthetic FER-format data: procedurally drawn 48x48 faces with learnable expressions.

`make demo` runs the whole pipeline on this so that a newcomer sees every stage in minutes
without the Kaggle file. Each class changes the brows, eyes and mouth in its own way; the
face position, size, lighting (level and a directional gradient), contrast and noise vary
at random so that the task is learnable but not trivial. Class frequencies follow
FER-2013's Training distribution, so the class-balance check flags `disgust` here too.
numpy only (no TensorFlow).
"""

from __future__ import annotations

import csv
from typing import IO

import numpy as np

from core import features

# FER-2013 Training class counts (see ../shared/data/fer2013/README.md).
FER_TRAIN_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)
CLASS_PROBABILITIES = np.array(FER_TRAIN_COUNTS, dtype=np.float64) / sum(FER_TRAIN_COUNTS)
# Usage shares as in the full FER-2013 (80 % Training, 10 % PublicTest, 10 % PrivateTest).
USAGE_SHARES = (("Training", 0.8), ("PublicTest", 0.1), ("PrivateTest", 0.1))

# Per class: brow tilt (+ = inner ends down, angry), brow height offset, eye openness,
# mouth curvature (+ = smile), mouth openness, mouth width.
_EXPRESSIONS = {
    0: dict(brow_tilt=0.9, brow_lift=1.0, eye_open=0.8, mouth_curve=-0.2, mouth_open=0.0, mouth_width=0.6),  # angry
    1: dict(brow_tilt=0.5, brow_lift=1.5, eye_open=0.5, mouth_curve=-0.5, mouth_open=0.3, mouth_width=0.8),  # disgust
    2: dict(brow_tilt=-0.7, brow_lift=-2.0, eye_open=1.6, mouth_curve=-0.3, mouth_open=0.5, mouth_width=1.0),  # fear
    3: dict(brow_tilt=0.0, brow_lift=0.0, eye_open=0.8, mouth_curve=1.0, mouth_open=0.3, mouth_width=1.1),  # happy
    4: dict(brow_tilt=-0.8, brow_lift=0.0, eye_open=0.7, mouth_curve=-1.0, mouth_open=0.0, mouth_width=0.8),  # sad
    5: dict(brow_tilt=0.0, brow_lift=-3.0, eye_open=1.8, mouth_curve=0.0, mouth_open=1.4, mouth_width=0.6),  # surprise
    6: dict(brow_tilt=0.0, brow_lift=0.0, eye_open=1.0, mouth_curve=0.0, mouth_open=0.0, mouth_width=0.9),  # neutral
}

_YY, _XX = np.mgrid[0 : features.IMAGE_HEIGHT, 0 : features.IMAGE_WIDTH].astype(np.float32)


def _segment_mask(x0, y0, x1, y1, thickness):
    """Soft mask of a thick line segment."""
    dx, dy = x1 - x0, y1 - y0
    length_sq = dx * dx + dy * dy + 1e-6
    t = np.clip(((_XX - x0) * dx + (_YY - y0) * dy) / length_sq, 0.0, 1.0)
    dist = np.hypot(_XX - (x0 + t * dx), _YY - (y0 + t * dy))
    return np.clip(thickness - dist + 0.5, 0.0, 1.0)


def _ellipse_mask(cx, cy, rx, ry):
    d = ((_XX - cx) / max(rx, 0.3)) ** 2 + ((_YY - cy) / max(ry, 0.3)) ** 2
    return np.clip((1.0 - d) * max(rx, ry), 0.0, 1.0)


def draw_face(label: int, rng: np.random.Generator) -> np.ndarray:
    """Returns one uint8 [48, 48] face with the expression of `label`."""
    e = _EXPRESSIONS[label]
    jitter = lambda s: rng.normal(0.0, s)  # noqa: E731 - small per-face variation
    cx = 24 + jitter(1.5)
    cy = 25 + jitter(1.5)
    scale = rng.uniform(0.85, 1.1)
    skin = rng.uniform(0.55, 0.8)
    background = rng.uniform(0.1, 0.45)
    img = np.full(_XX.shape, background, dtype=np.float32)
    face = _ellipse_mask(cx, cy, 17 * scale, 21 * scale)
    img = img * (1 - face) + skin * face

    dark = skin * rng.uniform(0.15, 0.35)
    eye_dx, eye_y = 7.5 * scale, cy - 5 * scale
    eye_ry = 1.6 * scale * (e["eye_open"] + jitter(0.1))
    brow_y = eye_y - 4.5 * scale + e["brow_lift"] + jitter(0.4)
    tilt = (e["brow_tilt"] + jitter(0.15)) * 2.2 * scale
    for side in (-1, 1):
        ex = cx + side * eye_dx
        eye = _ellipse_mask(ex, eye_y, 2.6 * scale, eye_ry)
        img = img * (1 - eye) + dark * eye
        # Brow: the inner end (towards the nose) moves down with positive tilt.
        inner_x, outer_x = cx + side * 3.5 * scale, cx + side * 11 * scale
        brow = _segment_mask(inner_x, brow_y + tilt, outer_x, brow_y - tilt, 1.0 * scale)
        img = img * (1 - brow) + dark * brow

    # Mouth: a parabola whose ends rise for a smile, plus an open ellipse.
    mouth_y = cy + 9 * scale + jitter(0.5)
    half_w = 6 * scale * (e["mouth_width"] + jitter(0.08))
    curve = (e["mouth_curve"] + jitter(0.15)) * 3.0 * scale
    xs = np.linspace(cx - half_w, cx + half_w, 9)
    ys = mouth_y - curve * ((xs - cx) / half_w) ** 2 + curve / 2
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        seg = _segment_mask(x0, y0, x1, y1, 0.9 * scale)
        img = img * (1 - seg) + dark * seg
    if e["mouth_open"] > 0:
        opening = _ellipse_mask(cx, mouth_y + curve / 4, half_w * 0.55, 1.8 * scale * e["mouth_open"])
        img = img * (1 - opening) + dark * 0.6 * opening

    # Lighting: overall level, a directional gradient (one side darker), contrast, noise.
    angle = rng.uniform(0, 2 * np.pi)
    gradient = ((_XX - 24) * np.cos(angle) + (_YY - 24) * np.sin(angle)) / 24
    light = rng.uniform(0.5, 1.3) * (1 + rng.uniform(0, 0.4) * gradient)
    contrast = rng.uniform(0.7, 1.2)
    img = (img - 0.5) * contrast + 0.5
    img = img * light + rng.normal(0, rng.uniform(0.01, 0.06), img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def demo_rows(rows: int, seed: int = 0):
    """(label, Usage, uint8 [48, 48] face) of each row, in file order: what write_demo_csv
    writes and write_demo_tree draws as image files, the same faces for the same seed."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    labels = rng.choice(features.NUM_CLASSES, size=rows, p=CLASS_PROBABILITIES)
    # Usage blocks in file order like the Kaggle file: all Training rows first.
    usages = []
    for name, share in USAGE_SHARES[:-1]:
        usages += [name] * int(round(rows * share))
    usages += [USAGE_SHARES[-1][0]] * (rows - len(usages))
    for label, usage in zip(labels, usages):
        yield int(label), usage, draw_face(int(label), rng)


def _counts(rows: int, labels, usage_counts: dict, with_usage: bool) -> dict:
    class_counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=features.NUM_CLASSES)
    return {
        "rows": rows,
        "usage": usage_counts if with_usage else {},
        "classes": {n: int(c) for n, c in zip(features.CLASS_NAMES, class_counts)},
    }


def write_demo_csv(stream: IO[str], rows: int, seed: int = 0, with_usage: bool = True) -> dict:
    """Writes `rows` FER-format rows; returns counts per Usage and per class."""
    writer = csv.writer(stream, lineterminator="\n")
    header = [features.CSV_EMOTION_COLUMN, features.CSV_PIXELS_COLUMN]
    writer.writerow(header + [features.CSV_USAGE_COLUMN] if with_usage else header)
    usage_counts: dict = {}
    labels = []
    for label, usage, face in demo_rows(rows, seed):
        pixels = " ".join(map(str, face.ravel().tolist()))
        row = [label, pixels]
        writer.writerow(row + [usage] if with_usage else row)
        usage_counts[usage] = usage_counts.get(usage, 0) + 1
        labels.append(label)
    return _counts(rows, labels, usage_counts, with_usage)


# The folder names write_demo_tree gives each Usage (those of the Kaggle images edition and
# the common val/ folder; components/fer_image_gen/folders.py maps them back).
TREE_SPLIT_FOLDERS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def write_demo_tree(root: str, rows: int, seed: int = 0, with_usage: bool = True, image_format: str = "png",
                    size: int = features.IMAGE_WIDTH) -> dict:
    """The faces of write_demo_csv(rows, seed) as image files: row i is
    ROOT/<split>/<emotion>/<i, 6 digits>.<format> (no <split>/ level without Usage), so that
    the folder ingest's order (file name within a split) is the CSV's row order. PNG is
    lossless: the 48x48 faces read back exactly; `size` other than 48 scales them up."""
    import os

    import cv2

    usage_counts: dict = {}
    labels = []
    made = set()
    for i, (label, usage, face) in enumerate(demo_rows(rows, seed)):
        parts = ([TREE_SPLIT_FOLDERS[usage]] if with_usage else []) + [features.CLASS_NAMES[label]]
        folder = os.path.join(root, *parts)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        image = face if size == features.IMAGE_WIDTH else cv2.resize(face, (size, size),
                                                                     interpolation=cv2.INTER_CUBIC)
        if not cv2.imwrite(os.path.join(folder, f"{i:06d}.{image_format}"), image):
            raise OSError(f"cannot write {folder}/{i:06d}.{image_format}")
        usage_counts[usage] = usage_counts.get(usage, 0) + 1
        labels.append(label)
    return _counts(rows, labels, usage_counts, with_usage)


def write_demo_file(path: str, rows: int, seed: int = 0, with_usage: bool = True) -> dict:
    import gzip
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", newline="") as f:
        return write_demo_csv(f, rows=rows, seed=seed, with_usage=with_usage)
