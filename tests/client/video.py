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


# The astronaut's face inside face_patch()'s crop [30:200, 140:310]: the cascade's box
# (177, 66, 95, 95) on the photo, as fractions of the 170-pixel crop.
FACE_IN_PATCH = (37 / 170, 36 / 170, 95 / 170)


def scene(n_faces: int, face_px: int, frames: int, size=(640, 480), speed: float = 3.0, seed: int = 0,
          enter_leave: bool = False):
    """Frames of `n_faces` astronaut faces `face_px` wide moving over a 640x480 textured
    background, each on its own straight path bouncing off the edges at `speed` px a frame.
    `enter_leave`: the last face enters a third of the way in and leaves at two thirds.
    Yields (BGR frame, [(face index, true face box x, y, w, h)]) listing the faces at least
    70 % visible (a face pasted later, higher in the stack, may cover one that crosses it)."""
    rng = np.random.default_rng(seed)
    width, height = size
    patch_px = int(round(face_px / FACE_IN_PATCH[2]))
    patch = face_patch(patch_px)
    fx, fy = int(round(FACE_IN_PATCH[0] * patch_px)), int(round(FACE_IN_PATCH[1] * patch_px))
    background = cv2.GaussianBlur(rng.integers(40, 200, (height, width, 3), dtype=np.uint8), (0, 0), 9)
    # Start positions on a grid (faces do not start on top of each other), random directions.
    columns = int(np.ceil(np.sqrt(n_faces * width / height)))
    rows = int(np.ceil(n_faces / columns))
    cell_w, cell_h = width / columns, height / rows
    pos = np.array([[min(width - patch_px, (k % columns) * cell_w + (cell_w - patch_px) / 2),
                     min(height - patch_px, (k // columns) * cell_h + (cell_h - patch_px) / 2)]
                    for k in range(n_faces)], float).clip(0)
    angle = rng.uniform(0, 2 * np.pi, n_faces)
    velocity = speed * np.stack([np.cos(angle), np.sin(angle)], 1)
    for index in range(frames):
        frame = background.copy()
        frame += rng.integers(0, 6, frame.shape, dtype=np.uint8)  # sensor noise
        shown = []
        for k in range(n_faces):
            if enter_leave and k == n_faces - 1 and not frames // 3 <= index < 2 * frames // 3:
                continue
            x, y = (int(round(v)) for v in pos[k])
            frame[y:y + patch_px, x:x + patch_px] = patch
            shown.append((k, (x, y), (x + fx, y + fy, face_px, face_px)))
        truth = []
        for i, (k, _, box) in enumerate(shown):
            covered = np.zeros((face_px, face_px), bool)
            for _, (px, py), _ in shown[i + 1:]:
                x0, y0 = max(px - box[0], 0), max(py - box[1], 0)
                x1, y1 = min(px + patch_px - box[0], face_px), min(py + patch_px - box[1], face_px)
                if x1 > x0 and y1 > y0:
                    covered[y0:y1, x0:x1] = True
            if covered.mean() <= 0.3:
                truth.append((k, box))
        yield frame, truth
        pos += velocity
        for axis, limit in ((0, width - patch_px), (1, height - patch_px)):
            out = (pos[:, axis] < 0) | (pos[:, axis] > limit)
            velocity[out, axis] *= -1
            pos[:, axis] = pos[:, axis].clip(0, limit)
