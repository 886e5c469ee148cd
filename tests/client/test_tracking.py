"""Following faces through video (client/tracking.py): boxes carried by optical flow, the
detector's schedule (every k frames, at once on a lost track or motion), ids that persist."""

from concurrent.futures import Future

import cv2
import numpy as np
import pytest

from client import detectors, faces, tracking
from tests.client.video import face_patch, scene


class AtOnce:
    """An executor that runs each task when it is submitted: repeatable schedules."""

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


def _frame_with_face(x, y, size=140):
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(40, 200, (480, 640), dtype=np.uint8), (0, 0), 9)
    patch = cv2.cvtColor(face_patch(size), cv2.COLOR_BGR2GRAY)
    frame[y:y + size, x:x + size] = patch
    return frame


def test_a_box_follows_its_face_by_flow():
    before, after = _frame_with_face(100, 80), _frame_with_face(107, 76)
    (box,) = tracking.carry_boxes(before, after, [(130, 110, 80, 80)])
    assert abs(box[0] - 137) <= 1 and abs(box[1] - 106) <= 1 and abs(box[2] - 80) <= 2


def test_a_box_scales_with_its_face():
    before, after = _frame_with_face(100, 80, 140), _frame_with_face(100, 80, 154)  # 10 % larger
    (box,) = tracking.carry_boxes(before, after, [(120, 100, 100, 100)])
    assert 105 <= box[2] <= 115


def test_a_face_that_is_gone_loses_its_track():
    before = _frame_with_face(100, 80)
    after = cv2.GaussianBlur(np.random.default_rng(5).integers(0, 255, before.shape, dtype=np.uint8), (0, 0), 2)
    assert tracking.carry_boxes(before, after, [(130, 110, 80, 80)]) == [None]


def _follow(live, frames):
    shown_per_frame = []
    for index, (frame, truth) in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        shown = live.update(frame, gray, index)  # tracks change in place: keep this frame's state
        shown_per_frame.append((truth, [tracking.Track(t.face_id, t.box, t.confidence) for t in shown]))
    return shown_per_frame


def _found(truth, shown):
    return sum(any(faces.iou(box, t.box) >= 0.3 for t in shown) for _, box in truth)


def test_tracks_keep_their_ids_and_find_every_face_between_detections():
    detector = detectors.make("haar", min_size=36, detect_scale=1.0)
    live = tracking.LiveFaces(detector, detect_every=8, executor=AtOnce())
    frames = list(scene(4, 80, 60, speed=4.0, seed=7))  # seed 7: the four never cover each other
    result = _follow(live, frames)
    found = sum(_found(truth, shown) for truth, shown in result)
    assert found / sum(len(truth) for truth, _ in result) >= 0.95
    ids = {t.face_id for _, shown in result for t in shown}
    assert len(ids) == 4  # four faces that stay: four ids, none broken
    assert live.detections_run <= 60 / 8 + 4  # the detector ran on a few frames, not on each


def test_a_face_that_enters_is_detected_at_once_and_gets_a_new_id():
    detector = detectors.make("haar", min_size=36, detect_scale=1.0)
    live = tracking.LiveFaces(detector, detect_every=1000, executor=AtOnce())  # only motion or loss detect
    frames = list(scene(2, 90, 60, speed=3.0, seed=1, enter_leave=True))  # face 1 is in frames 20-39
    result = _follow(live, frames)
    entered = next(i for i, (truth, _) in enumerate(result) if len(truth) == 2)
    first_seen = next(i for i, (truth, shown) in enumerate(result) if i >= entered and len(shown) == 2)
    assert first_seen - entered <= 2  # motion where no track is: detected within two frames
    ids_then = {t.face_id for t in result[first_seen][1]}
    assert len(ids_then) == 2 and min(ids_then) == 0  # the first face kept id 0; the newcomer got a new one
    after_leaving = result[45][1]
    assert [t.face_id for t in after_leaving] == [0]  # the one that left is no longer shown


class Delayed:
    """An executor whose tasks run when submitted but report done only `frames` ticks later:
    a detector that takes a few frames, repeatably."""

    def __init__(self, frames):
        self.frames, self.waiting = frames, []

    def submit(self, fn, *args):
        result = fn(*args)
        future = Future()
        self.waiting.append([self.frames, future, result])
        return future

    def tick(self):
        for entry in self.waiting:
            entry[0] -= 1
            if entry[0] <= 0:
                entry[1].set_result(entry[2])
        self.waiting = [e for e in self.waiting if e[0] > 0]


def _follow_delayed(executor, frames, detect_every=8):
    live = tracking.LiveFaces(detectors.make("haar", min_size=36, detect_scale=1.0), detect_every, executor)
    shown_per_frame = []
    for index, (frame, truth) in enumerate(frames):
        executor.tick()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        shown = live.update(frame, gray, index)
        shown_per_frame.append((truth, [tracking.Track(t.face_id, t.box, t.confidence) for t in shown]))
    return shown_per_frame


def _crossing(frames=110, face_px=90):
    """Two astronaut faces on one row, moving towards each other at 3 px a frame each; the
    second passes in front of the first. Yields (BGR frame, [(face, true box)]) with the faces
    at most 30 % covered, as scene() does."""
    from tests.client.video import FACE_IN_PATCH

    patch_px = int(round(face_px / FACE_IN_PATCH[2]))
    patch = face_patch(patch_px)
    fx, fy = int(round(FACE_IN_PATCH[0] * patch_px)), int(round(FACE_IN_PATCH[1] * patch_px))
    background = cv2.GaussianBlur(np.random.default_rng(4).integers(40, 200, (480, 640, 3), dtype=np.uint8), (0, 0), 9)
    for index in range(frames):
        frame = background.copy()
        xs = (60 + 3 * index, 420 - 3 * index)
        for x in xs:
            frame[150:150 + patch_px, x:x + patch_px] = patch
        behind = (xs[0] + fx, 150 + fy, face_px, face_px)
        covered = max(0, min(behind[0] + face_px, xs[1] + patch_px) - max(behind[0], xs[1])) / face_px
        truth = ([(0, behind)] if covered <= 0.3 else []) + [(1, (xs[1] + fx, 150 + fy, face_px, face_px))]
        yield frame, truth


def test_a_face_that_crosses_behind_another_coasts_and_keeps_its_id_when_it_comes_out():
    frames = list(_crossing())
    hidden = [i for i, (_, truth) in enumerate(frames) if len(truth) == 1]
    came_out = hidden[-1] + 1
    result = _follow_delayed(Delayed(3), frames)
    assert all(_found(truth, shown) == 2 for truth, shown in result[came_out:came_out + 10])  # found as it comes out
    ids = {t.face_id for _, shown in result[came_out:] for t in shown}
    assert ids == {0, 1}  # with the ids the two faces had before they crossed
    assert all(len(shown) <= 2 for _, shown in result)  # and no second box on the face in front


def test_a_face_that_is_gone_for_good_stops_coasting():
    frames = list(scene(1, 90, 50, speed=3.0, seed=3))[:20] + [
        (cv2.GaussianBlur(np.random.default_rng(9).integers(40, 200, (480, 640, 3), dtype=np.uint8), (0, 0), 9), [])
    ] * 20  # the face is gone from frame 20 on
    result = _follow_delayed(Delayed(3), frames)
    assert len(result[19][1]) == 1
    assert all(shown == [] for _, shown in result[20 + 3 + 1:])  # given up when the detection run at the loss missed it


def test_every_frame_detection_matches_by_overlap_and_drops_misses_at_once():
    boxes = iter([[(10, 10, 50, 50)], [(14, 10, 50, 50), (300, 10, 50, 50)], [(302, 12, 50, 50), (18, 10, 50, 50)],
                  [(18, 10, 50, 50)]])
    live = tracking.LiveFaces(lambda frame: [detectors.Detection(b, None) for b in next(boxes)], detect_every=1)
    gray = np.zeros((480, 640), np.uint8)
    ids = [[t.face_id for t in live.update(gray, gray, i)] for i in range(4)]
    assert ids[:3] == [[0], [0, 1], [0, 1]] and ids[3] == [0]


def test_smoothing_weights_the_newest_frame():
    track = tracking.Track(0, (0, 0, 10, 10))
    a, b = np.eye(7)[3], np.eye(7)[5]
    np.testing.assert_allclose(tracking.smooth(track, a, 0.25), a)
    np.testing.assert_allclose(tracking.smooth(track, b, 0.25), 0.75 * a + 0.25 * b)
    np.testing.assert_allclose(tracking.smooth(track, a, 1.0), a)


def test_the_label_on_show_changes_only_when_another_leads_by_the_margin():
    track = tracking.Track(0, (0, 0, 10, 10))
    happy, sad = features_index("happy"), features_index("sad")
    first = np.full(7, 0.02)
    first[happy], first[sad] = 0.5, 0.38
    assert tracking.shown_label(track, first, 0.05) == happy  # a face's first frame: its argmax
    close = first.copy()
    close[happy], close[sad] = 0.44, 0.47  # sad leads by 0.03 < 0.05: happy stays
    assert tracking.shown_label(track, close, 0.05) == happy
    clear = first.copy()
    clear[happy], clear[sad] = 0.40, 0.52  # sad leads by 0.12: it is shown
    assert tracking.shown_label(track, clear, 0.05) == sad
    assert tracking.shown_label(track, close, 0.0) == sad  # margin 0: the argmax, always
    assert faces.top2(close, happy) == (("happy", 0.44), ("sad", 0.47))  # the shown label first


def features_index(name):
    from core import features

    return features.CLASS_NAMES.index(name)


def test_a_detection_that_comes_back_ten_frames_late_still_places_its_faces():
    # At hundreds of frames/s the full-scale cascade takes ten frames and more: its boxes move
    # as their tracks moved since, or are carried frame by frame (one flow step across ten
    # frames of motion loses small faces).
    result = _follow_delayed(Delayed(10), list(scene(4, 60, 90, seed=2)), detect_every=4)
    found = sum(_found(truth, shown) for truth, shown in result)
    assert found / sum(len(truth) for truth, _ in result) >= 0.95
    assert len({t.face_id for _, shown in result for t in shown}) == 4
