"""bench/detector_bench.py's scoring on hand-made boxes, and its frames: faces where the
truth says, inside the frame, apart."""

import importlib.util
import os

import numpy as np
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("detector_bench", os.path.join(REPO, "bench", "detector_bench.py"))
detector_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(detector_bench)


def test_a_detection_matches_a_face_by_centre_and_overlap():
    face = (100, 100, 50, 50)
    assert detector_bench.match([face], [(105, 95, 45, 60)]) == (1, 0)  # a detector's own box shape
    assert detector_bench.match([face], [(0, 0, 20, 20)]) == (0, 1)  # elsewhere: a false positive
    assert detector_bench.match([face], [(60, 60, 200, 200)]) == (0, 1)  # centre inside, IoU 0.06: too loose
    assert detector_bench.match([face], []) == (0, 0)


def test_each_face_matches_one_detection_at_most():
    faces = [(0, 0, 50, 50), (200, 0, 50, 50)]
    found = [(2, 2, 48, 48), (0, 0, 52, 52), (198, 1, 50, 50)]  # two on the first face
    assert detector_bench.match(faces, found) == (2, 1)


def test_score_adds_up_frames():
    result = detector_bench.score([[(0, 0, 50, 50)], [(10, 10, 40, 40), (100, 100, 40, 40)]],
                                  [[(1, 1, 50, 50), (300, 300, 30, 30)], [(12, 10, 40, 40)]])
    assert (result["faces"], result["matched"], result["false_positives"]) == (3, 2, 1)
    assert result["recall"] == pytest.approx(2 / 3) and result["false_positives_per_frame"] == 0.5


def test_frames_hold_the_faces_where_the_truth_says():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (12, 48, 48)).astype(np.uint8)
    frames = detector_bench.make_frames(faces, 10)
    for frame, boxes in frames:
        assert frame.shape == detector_bench.FRAME + (3,) and 1 <= len(boxes) <= 3
        for i, (x, y, w, h) in enumerate(boxes):
            assert 0 <= x and x + w <= frame.shape[1] and 0 <= y and y + h <= frame.shape[0]
            assert w == h and w in detector_bench.SIZES
            assert frame[y:y + h, x:x + w].std() > 0  # a face, not the background, is there
            assert all(detector_bench.iou(boxes[i], other) == 0 for other in boxes[i + 1:])
