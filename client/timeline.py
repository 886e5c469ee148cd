"""fer-webcam's outputs: the emotion timeline (one CSV row per detected face per processed
frame, with the frame's source and the detector's confidence), the same as JSON lines, the
annotated frames (a video, or one image per input image), and a plot of each face's
emotions over time."""

import csv
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from core import features

# The model's probabilities as it gave them (the class names), then as shown: smoothed per
# face (fer-webcam --smoothing; equal to them when smoothing is off); top1/top2 are the shown.
SMOOTHED = [f"smoothed_{name}" for name in features.CLASS_NAMES]
COLUMNS = ["frame", "time_s", "source", "face_id", "x", "y", "w", "h", "confidence", *features.CLASS_NAMES,
           *SMOOTHED, "top1", "top2"]
# Okabe-Ito: distinguishable with any colour vision.
COLOURS = ["#D55E00", "#009E73", "#000000", "#E69F00", "#0072B2", "#CC79A7", "#999999"]


class TimelineWriter:
    def __init__(self, path: str):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)

    def write(self, frame: int, time_s: Optional[float], source: str, face_id: int, box,
              confidence: Optional[float], probabilities: np.ndarray, smoothed: np.ndarray, top1: str,
              top2: str) -> None:
        """time_s None: a photo, which has no time (the column stays empty)."""
        self._writer.writerow([frame, "" if time_s is None else f"{time_s:.3f}", source, face_id, *box,
                               "" if confidence is None else f"{confidence:.4f}",
                               *(f"{p:.5f}" for p in probabilities), *(f"{p:.5f}" for p in smoothed), top1, top2])

    def close(self) -> None:
        self._file.close()


class JsonlWriter:
    """One JSON object per detected face per processed frame; path "-" is stdout."""

    def __init__(self, path: str):
        self._file = sys.stdout if path == "-" else open(path, "w")

    def write(self, frame: int, time_s: Optional[float], source: str, face_id: int, box,
              confidence: Optional[float], probabilities: np.ndarray, smoothed: np.ndarray, top1: str,
              top2: str) -> None:
        """`emotions`: the model's probabilities; `smoothed`: as shown (top1, top2)."""
        record = {"frame": frame, "time_s": None if time_s is None else round(time_s, 3), "source": source,
                  "face_id": face_id, "box": [int(v) for v in box], "confidence": confidence,
                  "emotions": {name: round(float(p), 5) for name, p in zip(features.CLASS_NAMES, probabilities)},
                  "smoothed": {name: round(float(p), 5) for name, p in zip(features.CLASS_NAMES, smoothed)},
                  "top1": top1, "top2": top2}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()


class AnnotatedWriter:
    """The overlaid frames: an MP4 (mp4v) of the input's size and frame rate for a camera or
    video, or, for images, one image a source image under `path` (a folder) with its name."""

    def __init__(self, path: str, kind: str, fps: float):
        self.path, self.kind, self.fps = path, kind, fps
        self._video = None
        self.written = 0
        if kind == "images":
            os.makedirs(path, exist_ok=True)

    def write(self, frame: np.ndarray, source: str) -> None:
        import cv2

        if self.kind == "images":
            if not cv2.imwrite(os.path.join(self.path, os.path.basename(source)), frame):
                raise OSError(f"{self.path}: cannot write {os.path.basename(source)}")
        else:
            if self._video is None:
                height, width = frame.shape[:2]
                self._video = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
                if not self._video.isOpened():
                    raise OSError(f"{self.path}: OpenCV cannot write an MP4 video here")
            self._video.write(frame)
        self.written += 1

    def close(self) -> None:
        if self._video is not None:
            self._video.release()


def read_timeline(path: str) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_timeline(csv_path: str, png_path: str, title: Optional[str] = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_timeline(csv_path)
    face_ids = sorted({int(r["face_id"]) for r in rows})
    fig, axes = plt.subplots(max(1, len(face_ids)), 1, figsize=(9, 2.6 * max(1, len(face_ids))), sharex=True,
                             squeeze=False)
    for ax, face_id in zip(axes[:, 0], face_ids or [None]):
        mine = [r for r in rows if int(r["face_id"]) == face_id]
        # Photos have no time: their order stands in for it.
        t = [float(r["time_s"]) if r["time_s"] else int(r["frame"]) for r in mine]
        for name, colour in zip(features.CLASS_NAMES, COLOURS):
            shown = f"smoothed_{name}" if mine and f"smoothed_{name}" in mine[0] else name
            ax.plot(t, [float(r[shown]) for r in mine], label=name, color=colour, linewidth=1.4)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {face_id}" if face_id is not None else "no faces")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=7, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.3))
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, y=1.02)
    fig.savefig(png_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return png_path
