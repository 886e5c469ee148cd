"""fer-webcam end to end against the local TF Serving-API server: the astronaut photo, a
generated video with one and then two faces, and a server restart in the middle of a video."""

import os
import re
import time

import numpy as np
import pytest

from client import webcam
from client.tfserving import FerClient
from client.timeline import read_timeline
from core import features
from serving import server as local_server
from tests.client.video import astronaut_bgr, write_video
from tests.serving.conftest import free_port


@pytest.fixture(scope="module")
def served(model_base):
    server = local_server.start(model_base_path=str(model_base), grpc_port=0, rest_port=None)
    yield server
    server.stop()


def _probabilities(row):
    return np.array([float(row[name]) for name in features.CLASS_NAMES])


def test_astronaut_photo(served, tmp_path, capsys):
    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    csv, plot = tmp_path / "t.csv", tmp_path / "t.png"
    assert webcam.main(["--server", f"127.0.0.1:{served.grpc_port}", "--source", str(photo), "--no-display",
                        "--timeline", str(csv), "--timeline-plot", str(plot)]) == 0
    assert "1 frames, 1 faces" in capsys.readouterr().out
    (row,) = read_timeline(str(csv))
    assert _probabilities(row).sum() == pytest.approx(1.0, abs=1e-4)
    assert row["top1"] == features.CLASS_NAMES[int(np.argmax(_probabilities(row)))]
    assert 150 < int(row["x"]) < 220 and plot.stat().st_size > 5000


@pytest.mark.parametrize("flags", [["--detect-every", "1"], ["--pipelined", "--detect-every", "1"]])
def test_video_with_one_then_two_faces(served, tmp_path, flags):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 8 + [2] * 8)
    csv = tmp_path / "t.csv"
    assert webcam.main(["--server", f"127.0.0.1:{served.grpc_port}", "--source", video, "--no-display",
                        "--timeline", str(csv), "--smoothing", "0.5", *flags]) == 0
    rows = read_timeline(str(csv))
    per_frame = {}
    for row in rows:
        per_frame.setdefault(int(row["frame"]), []).append(row)
    assert sorted(per_frame) == list(range(16))
    assert [len(per_frame[i]) for i in range(16)] == [1] * 8 + [2] * 8  # one row per face per frame
    for row in rows:
        assert _probabilities(row).sum() == pytest.approx(1.0, abs=1e-4)
    # Tracking: the first face keeps id 0 throughout; the second face is id 1 from its first frame.
    assert {r["face_id"] for r in rows if int(r["x"]) < 300} == {"0"}
    assert {r["face_id"] for r in rows if int(r["x"]) >= 300} == {"1"}
    assert float(per_frame[3][0]["time_s"]) == pytest.approx(3 / 30, abs=1e-3)


def test_client_survives_a_server_restart_mid_video(model_base, tmp_path):
    port = free_port()
    holder = {"server": local_server.start(model_base_path=str(model_base), grpc_port=port, rest_port=None)}
    video = write_video(str(tmp_path / "long.avi"), [1] * 40)

    banner = {}

    def chaos(result, frame):
        # A camera's pace, so that the outage spans real time. After the restart the frames come
        # slower: the channel retries at most 1 s (+20 % jitter) apart (client/tfserving.py), and
        # 19 frames at 1/30 s left a busy CI machine no time to see the server back.
        time.sleep(1 / 30 if result.index < 20 else 0.15)
        banner[result.index] = tuple(int(v) for v in frame[5, 5])  # the overlay's status strip
        if result.index == 10:
            holder["server"].stop()  # the server goes away...
        if result.index == 20:
            holder["server"] = local_server.start(model_base_path=str(model_base), grpc_port=port, rest_port=None)  # ...and returns

    client = FerClient(f"127.0.0.1:{port}", timeout_s=0.5, retries=0)
    frames = webcam.open_source(video).frames
    try:
        stats = webcam.WebcamRunner(client, on_frame=chaos).run(frames)
    finally:
        client.close()
        holder["server"].stop()
    assert len(stats.frames) == 40  # every frame processed, none lost to the outage
    answered = [f.index for f in stats.frames if f.probabilities is not None]
    assert stats.server_errors > 0
    assert min(answered) == 0 and max(answered) == 39  # before the outage and after the restart
    assert any(10 < i < 21 for i in range(40) if i not in answered)  # and the gap in between
    assert all(len(f.boxes) == 1 for f in stats.frames)
    down = [i for i in range(40) if i not in answered]
    assert all(banner[i] == webcam.ALERT_COLOUR for i in down)  # the overlay says the server is away
    assert banner[0] != webcam.ALERT_COLOUR and banner[39] != webcam.ALERT_COLOUR


def test_annotated_video_json_lines_and_the_source_column(served, tmp_path, capsys):
    import json

    import cv2

    video = write_video(str(tmp_path / "faces.avi"), [1] * 6 + [2] * 6)
    out, jsonl, csv = tmp_path / "annotated.mp4", tmp_path / "faces.jsonl", tmp_path / "t.csv"
    assert webcam.main(["--server", f"127.0.0.1:{served.grpc_port}", "--source", video, "--timeline", str(csv),
                        "--jsonl", str(jsonl), "--save-annotated", str(out),
                        "--detect-every", "1"]) == 0  # no --no-display: no window here
    capture = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 12 and frames[0].shape == (480, 640, 3)  # the input's frame count and size
    assert abs(int(frames[0][150:300, 40:190].mean()) - int(frames[0][5:40, 5:40].mean())) > 5  # not blank
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = read_timeline(str(csv))
    assert len(records) == len(rows) == 6 + 12
    assert {r["source"] for r in records} == {r["source"] for r in rows} == {video}
    assert records[0]["confidence"] is None and rows[0]["confidence"] == ""  # the Haar cascade gives none
    assert set(records[0]["emotions"]) == set(records[0]["smoothed"]) == set(features.CLASS_NAMES)
    assert "annotated: " in capsys.readouterr().err


def test_a_folder_skips_unreadable_images_and_writes_annotated_images(served, tmp_path, capsys):
    import cv2

    folder, out = tmp_path / "photos", tmp_path / "annotated"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_astronaut.png"), astronaut_bgr())
    (folder / "b_broken.png").write_bytes(b"not an image")
    cv2.imwrite(str(folder / "c_astronaut.jpg"), astronaut_bgr())
    csv = tmp_path / "t.csv"
    assert webcam.main(["--server", f"127.0.0.1:{served.grpc_port}", "--source", str(folder), "--no-display",
                        "--timeline", str(csv), "--save-annotated", str(out), "--detector", "mtcnn"]) == 0
    summary = capsys.readouterr().out
    assert "2 frames, 2 faces, " in summary and "1 unreadable image(s) skipped" in summary
    assert sorted(p.name for p in out.iterdir()) == ["a_astronaut.png", "c_astronaut.jpg"]
    assert cv2.imread(str(out / "a_astronaut.png")).shape == astronaut_bgr().shape
    rows = read_timeline(str(csv))
    assert [os.path.basename(r["source"]) for r in rows] == ["a_astronaut.png", "c_astronaut.jpg"]
    assert all(0.9 <= float(r["confidence"]) <= 1.0 for r in rows)  # MTCNN's score


def test_no_prediction_at_all_exits_non_zero(tmp_path, capsys):
    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    rc = webcam.main(["--server", f"127.0.0.1:{free_port()}", "--source", str(photo), "--no-display",
                      "--timeout", "0.3"])
    assert rc == 1
    assert "error: no frame got a prediction (the server did not answer)" in capsys.readouterr().err


def test_the_console_holds_the_project_s_lines_only(tmp_path):
    """No libpng iCCP warning, TFLite XNNPACK line or matplotlib font-cache lines (a first run)."""
    import subprocess
    import sys

    from tests.client.test_analyze import _png_with_a_bad_colour_profile
    from tests.conftest import REPO

    photo = _png_with_a_bad_colour_profile(tmp_path / "astronaut.png")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    result = subprocess.run([sys.executable, "-m", "client.webcam", "--server", f"127.0.0.1:{free_port()}", "--source",
                             str(photo), "--no-display", "--timeout", "0.3", "--detector", "blazeface", "--timeline",
                             str(tmp_path / "t.csv"), "--timeline-plot", str(tmp_path / "t.png")],
                            capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    noise = [line for line in lines if re.search(r"libpng|XNNPACK|fontManager|font cache", line)]
    assert not noise, lines
    assert lines[-1] == "error: no frame got a prediction (the server did not answer)"
