"""The emotion timeline: one CSV row per detected face per processed frame, and a plot of
each face's emotions over time."""

import csv
from typing import Dict, List, Optional

import numpy as np

from models import features

COLUMNS = ["frame", "time_s", "face_id", "x", "y", "w", "h", *features.CLASS_NAMES, "top1", "top2"]
# Okabe-Ito: distinguishable with any colour vision.
COLOURS = ["#D55E00", "#009E73", "#000000", "#E69F00", "#0072B2", "#CC79A7", "#999999"]


class TimelineWriter:
    def __init__(self, path: str):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)

    def write(self, frame: int, time_s: float, face_id: int, box, probabilities: np.ndarray, top1: str,
              top2: str) -> None:
        self._writer.writerow([frame, f"{time_s:.3f}", face_id, *box, *(f"{p:.5f}" for p in probabilities), top1, top2])

    def close(self) -> None:
        self._file.close()


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
        t = [float(r["time_s"]) for r in mine]
        for name, colour in zip(features.CLASS_NAMES, COLOURS):
            ax.plot(t, [float(r[name]) for r in mine], label=name, color=colour, linewidth=1.4)
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
