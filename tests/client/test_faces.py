"""client/faces.py and client/timeline.py: detection on a real face, crops, tracking,
smoothing, top-2, the timeline CSV and its plot."""

import numpy as np
import pytest

from client import faces, timeline
from core import features
from tests.client.video import astronaut_bgr


def test_the_cascade_finds_the_astronaut_and_crops_48x48():
    import cv2

    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    boxes = faces.detect_faces(gray, faces.load_cascade())
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 150 < x < 220 and 40 < y < 110 and w == h > 60  # her face, not the flag or the helmet
    crops = faces.crop_faces(gray, boxes)
    assert crops.shape == (1, 48, 48) and crops.dtype == np.uint8
    # Area-averaged shrink: the crop's mean brightness is the box's.
    assert abs(float(crops.mean()) - float(gray[y:y + h, x:x + w].mean())) < 2.0


def test_top2():
    assert faces.top2(np.array([0.1, 0, 0.05, 0.6, 0.05, 0.2, 0.0])) == (("happy", 0.6), ("surprise", 0.2))


def test_timeline_csv_and_plot(tmp_path):
    path = tmp_path / "t.csv"
    writer = timeline.TimelineWriter(str(path))
    writer.write(0, None, "a.png", 0, (1, 2, 3, 4), None, np.full(7, 1 / 7), np.full(7, 1 / 7), "angry", "disgust")
    writer.write(1, 0.033, "b.png", 1, (5, 6, 7, 8), 0.93, np.eye(7)[3], np.eye(7)[5], "surprise", "angry")
    writer.close()
    rows = timeline.read_timeline(str(path))
    assert list(rows[0]) == ["frame", "time_s", "source", "face_id", "x", "y", "w", "h", "confidence",
                             *features.CLASS_NAMES, *(f"smoothed_{n}" for n in features.CLASS_NAMES), "top1", "top2"]
    assert rows[1]["happy"] == "1.00000" and rows[1]["smoothed_surprise"] == "1.00000" and rows[1]["face_id"] == "1"
    assert rows[0]["time_s"] == "" and rows[1]["time_s"] == "0.033"  # a photo has no time
    assert (rows[0]["source"], rows[0]["confidence"], rows[1]["confidence"]) == ("a.png", "", "0.9300")
    png = timeline.plot_timeline(str(path), str(tmp_path / "t.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("spec, message", [("/no/such/video.mp4", "no such file"), ("99", "camera 99 could not")])
def test_missing_sources_are_clear_errors(spec, message):
    from client.webcam import SourceError, open_source

    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_unreadable_files_are_clear_errors(tmp_path):
    from client.webcam import SourceError, open_source

    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="not a video"):
        open_source(str(tmp_path / "broken.mp4"))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    source = open_source(str(tmp_path / "broken.png"))
    with pytest.raises(SourceError, match="not an image"):
        next(source.frames)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "empty"))
