"""client.analyze and `fer-pipeline predict` with the shipped model: a real face in the
right place, arrays and paths alike, and a folder with a corrupt image."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from client import analyze as fer
from client.faces import iou
from core import features
from tests.client.video import astronaut_bgr
from tests.conftest import REPO


def _check_astronaut(found):
    assert len(found) == 1
    face = found[0]
    x, y, w, h = face["box"]
    assert 150 < x < 220 and 40 < y < 110 and w > 60 and h > 60  # her face, not the flag or the helmet
    assert list(face["emotions"]) == list(features.CLASS_NAMES)
    assert sum(face["emotions"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["dominant_emotion"] == max(face["emotions"], key=face["emotions"].get)
    assert 0.9 <= face["confidence"] <= 1.0  # MTCNN, the default detector, is sure of her face


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
def test_every_detector_finds_the_astronaut(detector):
    (face,) = fer.analyze(astronaut_bgr(), detector=detector)
    x, y, w, h = face["box"]
    assert 150 < x < 220 and 40 < y < 110 and w > 60 and h > 60
    assert face["confidence"] is None if detector == "haar" else 0.5 <= face["confidence"] <= 1.0


def test_analyze_finds_the_astronaut_in_a_bgr_array_a_gray_array_and_a_file(tmp_path):
    import cv2

    bgr = astronaut_bgr()
    from_bgr = fer.analyze(bgr)
    _check_astronaut(from_bgr)
    from_gray = fer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    _check_astronaut(from_gray)
    assert iou(from_gray[0]["box"], from_bgr[0]["box"]) > 0.7  # the same face, with or without colour
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), bgr)
    _check_astronaut(fer.analyze(str(path)))
    # She smiles: the shipped model should see it among its top two.
    ranked = sorted(from_bgr[0]["emotions"], key=from_bgr[0]["emotions"].get, reverse=True)
    assert "happy" in ranked[:2]


def test_analyze_refuses_what_is_not_an_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(fer.ImageError, match="bad.jpg: not an image"):
        fer.analyze(str(bad))
    with pytest.raises(fer.ImageError, match="no such file"):
        fer.analyze(str(tmp_path / "missing.png"))
    with pytest.raises(fer.ImageError, match=r"\[H, W\]"):
        fer.analyze(np.zeros((2, 3, 4, 5)))


def _predict(*args):
    return subprocess.run([sys.executable, "-m", "cli.main", "predict", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_predict_a_folder_with_a_corrupt_image(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.jpg"), astronaut_bgr())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "notes.txt").write_text("not an image, not looked at")
    result = _predict(str(folder), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # stdout is JSON lines only
    assert len(lines) == 1 and lines[0]["file"].endswith("astronaut.jpg") and lines[0]["face"] == 0
    assert set(lines[0]) >= {"box", "emotions", "dominant_emotion", "confidence"}
    assert "broken.png: not an image OpenCV can read; skipped" in result.stderr
    assert "1 of 2 file(s) read, 1 face(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_exits_non_zero_when_nothing_could_be_read(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"nope")
    result = _predict(str(tmp_path / "broken.png"), str(tmp_path / "missing.jpg"))
    assert result.returncode == 1
    assert "error: no image could be read" in result.stderr and "Traceback" not in result.stderr
    assert "missing.jpg: no such file; skipped" in result.stderr


def test_predict_through_an_unreachable_server_is_a_one_line_error(tmp_path):
    import cv2

    from tests.serving.conftest import free_port  # a port nobody listens on

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    result = _predict(str(photo), "--server", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: server 127.0.0.1:" in result.stderr


def test_faces_come_left_to_right():
    class Detector:
        def __call__(self, pixels):
            from client.detectors import Detection
            return [Detection((60, 5, 20, 20), 0.9), Detection((2, 30, 20, 20), 0.8), Detection((30, 1, 20, 20), 0.7)]

    class Predictor:
        def predict(self, faces):
            return np.full((len(faces), features.NUM_CLASSES), 1 / features.NUM_CLASSES, np.float32)

    analyzer = fer.Analyzer.__new__(fer.Analyzer)
    analyzer.detector, analyzer.predictor = Detector(), Predictor()
    found = analyzer(np.zeros((100, 100), np.uint8))
    assert [face["box"][0] for face in found] == [2, 30, 60]
    assert [face["confidence"] for face in found] == [0.8, 0.7, 0.9]


def test_predict_says_no_such_file_before_tensorflow_loads(tmp_path):
    code = ("import sys; from cli.main import main; rc = main(['predict', %r]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)" % str(tmp_path / "nope.jpg"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"warning: {tmp_path / 'nope.jpg'}: no such file; skipped",
                                          "error: no image could be read"]


def test_predict_text_names_the_box_and_a_file_without_a_face(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "astronaut.jpg"), astronaut_bgr())
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((120, 160), 128, np.uint8))
    result = _predict(str(tmp_path / "astronaut.jpg"), str(tmp_path / "blank.png"), "--detector", "haar")
    assert result.returncode == 0, result.stderr
    face, blank = result.stdout.splitlines()
    assert re.fullmatch(re.escape(str(tmp_path / "astronaut.jpg")) + r": face 0 at x=\d+ y=\d+ w=\d+ h=\d+: "
                        r"\w+ \d\.\d\d, \w+ \d\.\d\d", face), face
    assert blank == f"{tmp_path / 'blank.png'}: no face found"


def test_predict_json_gives_a_face_less_file_its_line_and_counts_what_a_folder_skips(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    cv2.imwrite(str(folder / "a_astronaut.jpg"), astronaut_bgr())
    cv2.imwrite(str(folder / "b_blank.png"), np.full((120, 160), 128, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    result = _predict(str(folder), "--json", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["file"], line["face"]) for line in lines] == [(str(folder / "a_astronaut.jpg"), 0),
                                                                (str(folder / "b_blank.png"), None)]
    assert f"warning: {folder}: 2 entries not an image file (subfolders are not looked in): more, notes.txt; " \
           "skipped" in result.stderr
    assert "2 of 2 file(s) read, 1 face(s), 2 skipped" in result.stderr


def test_analyze_names_a_folder_and_a_missing_image_argument(tmp_path):
    with pytest.raises(fer.ImageError, match=f"^{re.escape(str(tmp_path))} is a folder, not an image"):
        fer.analyze(str(tmp_path))
    with pytest.raises(fer.ImageError, match="is a folder, not an image"):
        fer.analyze(tmp_path)  # a pathlib.Path too
    with pytest.raises(TypeError, match=r"^image: expected a path \(str or os.PathLike\) or a numpy image array, "
                                        r"got NoneType$"):
        fer.analyze(None)


def _png_with_a_bad_colour_profile(path):
    """The astronaut as a PNG whose iCCP chunk libpng ignores with a warning on fd 2."""
    import struct
    import zlib

    import cv2

    data = cv2.imencode(".png", astronaut_bgr())[1].tobytes()
    body = b"ICC Profile\0\0" + zlib.compress(b"\0" * 200)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    path.write_bytes(data[:33] + chunk + data[33:])  # after the signature and IHDR
    return path


def test_predict_keeps_the_console_to_the_project_s_lines(tmp_path):
    """libpng's iCCP warning and TFLite's XNNPACK line (BlazeFace) are native lines on fd 2."""
    import os

    photo = _png_with_a_bad_colour_profile(tmp_path / "astronaut.png")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")  # a first run: matplotlib builds its font cache
    result = subprocess.run([sys.executable, "-m", "cli.main", "predict", str(photo), "--detector", "blazeface"],
                            capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(re.escape(str(photo)) + r": face 0 at .*\n", result.stdout)
    assert result.stderr == "1 of 1 file(s) read, 1 face(s)\n"
