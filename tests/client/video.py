"""Test media: scikit-image's astronaut photo (a real face) and short generated videos of
that face pasted into 640x480 frames, moving a little from frame to frame."""

import cv2
import numpy as np


def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_patch(size: int = 140) -> np.ndarray:
    """The astronaut's head with some margin (the cascade finds her face at 177,66 95x95)."""
    head = astronaut_bgr()[30:200, 140:310]
    return cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)


def write_video(path: str, faces_per_frame, size=(640, 480), fps: float = 30.0, seed: int = 0) -> str:
    """faces_per_frame: the number of faces in each frame (e.g. [1]*10 + [2]*10), up to 4.
    Face k sits in its own cell (two columns; a second row from the third face on) and drifts
    right by 2 px a frame, jumping back every 40 frames (long videos stay inside the frame)."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
    patch = face_patch()
    for index, count in enumerate(faces_per_frame):
        frame = np.full((size[1], size[0], 3), 90, np.uint8)
        frame += rng.integers(0, 12, frame.shape, dtype=np.uint8)
        for k in range(count):
            x = 40 + 300 * (k % 2) + 2 * (index % 40)
            y = 150 if max(faces_per_frame) <= 2 else 20 + 240 * (k // 2)
            frame[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
        writer.write(frame)
    writer.release()
    return path
