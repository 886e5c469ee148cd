"""fer-webcam without a server (the model in-process) and the friction a new user hit: a
--server given as a URL or the REST port, photos without times, a closed pipe, one path for
two outputs, a video that breaks off, a frame of another size."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from client import webcam
from client.timeline import read_timeline
from tests.client.video import astronaut_bgr, write_video

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("address, words", [("http://127.0.0.1:8501", "not a URL"),
                                            ("localhost:8501", "8501 is TF Serving's REST port"),
                                            ("127.0.0.1", "gRPC HOST:PORT")])
def test_server_takes_the_grpc_host_and_port_and_says_so_at_once(address, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        webcam.main(["--server", address, "--source", "x.mp4"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "--server" in err and "Traceback" not in err


def test_the_shipped_model_runs_in_process_without_a_server(tmp_path, capsys):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 6)
    csv = tmp_path / "t.csv"
    assert webcam.main(["--source", video, "--no-display", "--timeline", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "6 frames, 6 faces" in out
    rows = read_timeline(str(csv))
    assert len(rows) == 6 and {r["face_id"] for r in rows} == {"0"}
    assert float(rows[3]["time_s"]) == pytest.approx(3 / 30, abs=1e-3)


def test_photos_get_no_times_and_ids_start_again_on_each(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(folder / name), astronaut_bgr())
    jsonl = tmp_path / "faces.jsonl"
    assert webcam.main(["--source", str(folder), "--no-display", "--jsonl", str(jsonl)]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [os.path.basename(r["source"]) for r in records] == ["a.png", "b.png", "c.png"]
    assert all(r["time_s"] is None and r["face_id"] == 0 for r in records)


def test_one_path_for_two_outputs_is_refused(tmp_path, capsys):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 2)
    same = str(tmp_path / "out.csv")
    assert webcam.main(["--source", video, "--no-display", "--timeline", same, "--jsonl", same]) == 2
    err = capsys.readouterr().err
    assert "--timeline and --jsonl name the same file" in err and not os.path.exists(same)


def test_json_lines_into_a_closed_pipe_end_quietly(tmp_path):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 40)
    process = subprocess.Popen([sys.executable, "-m", "client.webcam", "--source", video, "--no-display",
                                "--jsonl", "-"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # `| head -1`
    _, err = process.communicate(timeout=120)
    assert json.loads(first)["frame"] == 0
    assert process.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_a_video_that_breaks_off_ends_with_one_line_and_keeps_its_rows(tmp_path, capsys):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 30)
    data = open(video, "rb").read()
    with open(video, "wb") as f:  # the file ends part-way: its header still announces 30 frames
        f.write(data[:len(data) // 2])
    csv = tmp_path / "t.csv"
    assert webcam.main(["--source", video, "--no-display", "--timeline", str(csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be decoded" in err[0] and "of 30" in err[0]
    rows = read_timeline(str(csv))
    assert 5 <= len(rows) < 30  # the frames before the break are written


def test_a_frame_of_another_size_stops_the_run_with_a_clear_error():
    frame = cv2.resize(astronaut_bgr(), (640, 480))
    frames = iter([(frame, 0.0, "cam"), (frame, 0.033, "cam"), (frame[:240, :320], 0.066, "cam")])
    runner = webcam.WebcamRunner(webcam.InProcessEngine(), detect_every=1)
    with pytest.raises(webcam.SourceError, match="frame 3 is 320x240, the frames before it 640x480"):
        runner.run(frames)


def test_a_server_that_speaks_http1_is_named_as_such(tmp_path, capsys):
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # the test reads stderr
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    video = write_video(str(tmp_path / "faces.avi"), [1] * 2)
    try:
        code = webcam.main(["--server", f"127.0.0.1:{server.server_address[1]}", "--source", video, "--no-display"])
    finally:
        server.shutdown()
    # (TensorFlow's C++ start-up lines, printed to fd 2 as it loads inside this test, aside)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "external/local_xla" not in line]
    assert code == 2 and len(err) == 1 and "answers HTTP/1.x" in err[0] and "gRPC" in err[0]


def test_in_process_the_int8_twin_is_chosen_and_agrees_with_the_saved_model():
    from tests.client.video import face_patch

    faces = np.stack([cv2.resize(cv2.cvtColor(face_patch(), cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA),
                      np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)])
    auto, saved = webcam.InProcessEngine(), webcam.InProcessEngine(engine="savedmodel")
    assert auto.engine == "tflite" and auto.target.startswith("in-process tflite") and saved.engine == "savedmodel"
    fast, exact = auto.predict(faces), saved.predict(faces)
    assert fast.shape == exact.shape == (2, 7)
    assert (fast.argmax(1) == exact.argmax(1)).all() and np.abs(fast - exact).max() < 0.1


def test_engine_is_for_the_in_process_model_only(tmp_path, capsys):
    video = write_video(str(tmp_path / "faces.avi"), [1] * 2)
    assert webcam.main(["--server", "127.0.0.1:8500", "--engine", "tflite", "--source", video, "--no-display"]) == 2
    assert "--model and --engine are for a model run here" in capsys.readouterr().err


def test_smoothing_and_hysteresis_off_show_the_raw_argmax_and_on_by_default(tmp_path):
    from core import features

    video = write_video(str(tmp_path / "faces.avi"), [1] * 12)
    off, on = tmp_path / "off.csv", tmp_path / "on.csv"
    assert webcam.main(["--source", video, "--no-display", "--timeline", str(off), "--smoothing", "1",
                        "--hysteresis", "0"]) == 0
    assert webcam.main(["--source", video, "--no-display", "--timeline", str(on)]) == 0
    for row in read_timeline(str(off)):
        raw = np.array([float(row[name]) for name in features.CLASS_NAMES])
        assert row["top1"] == features.CLASS_NAMES[int(raw.argmax())]
        assert all(row[name] == row[f"smoothed_{name}"] for name in features.CLASS_NAMES)
    rows = read_timeline(str(on))
    raw = np.array([[float(r[n]) for n in features.CLASS_NAMES] for r in rows])
    smoothed = np.array([[float(r[f"smoothed_{n}"]) for n in features.CLASS_NAMES] for r in rows])
    expected, shown = raw[0], int(raw[0].argmax())
    assert rows[0]["top1"] == features.CLASS_NAMES[shown]
    for i in range(1, len(rows)):  # the defaults: LIVE_SMOOTHING's EMA, then LIVE_HYSTERESIS's margin
        expected = webcam.LIVE_SMOOTHING * raw[i] + (1 - webcam.LIVE_SMOOTHING) * expected
        np.testing.assert_allclose(smoothed[i], expected, atol=2e-5)
        top = int(smoothed[i].argmax())
        if smoothed[i][top] - smoothed[i][shown] > webcam.LIVE_HYSTERESIS:
            shown = top
        assert rows[i]["top1"] == features.CLASS_NAMES[shown]
    assert webcam.LIVE_HYSTERESIS > 0  # on by default


@pytest.mark.parametrize("pipelined", [False, True])
def test_predict_runs_in_the_frame_s_thread_unless_pipelined(pipelined):
    import threading

    class Client:
        target, threads = "fake", []

        def predict(self, crops):
            self.threads.append(threading.current_thread())
            return np.full((len(crops), 7), 1 / 7)

    client = Client()
    frame = np.full((120, 160, 3), 90, np.uint8)
    detector = lambda image: [webcam.detectors.Detection((40, 30, 60, 60), None)]  # noqa: E731
    stats = webcam.WebcamRunner(client, detect_every=1, detector=detector, pipelined=pipelined).run(
        iter([(frame.copy(), i / 30, "v") for i in range(3)]))
    assert stats.predicted_frames == 3
    assert all((t is threading.current_thread()) != pipelined for t in client.threads)


@pytest.mark.parametrize("faces, overlapped", [(1, True), (2, True), (3, False)])
def test_auto_pipelining_overlaps_the_predict_of_frames_with_few_faces_only(faces, overlapped):
    import threading

    class Client:
        target, threads = "fake", []

        def predict(self, crops):
            self.threads.append((len(crops), threading.current_thread()))
            return np.full((len(crops), 7), 1 / 7)

    client = Client()
    frame = np.full((120, 400, 3), 90, np.uint8)
    boxes = [(10 + 130 * i, 30, 60, 60) for i in range(faces)]
    detector = lambda image: [webcam.detectors.Detection(box, None) for box in boxes]  # noqa: E731
    runner = webcam.WebcamRunner(client, detect_every=1, detector=detector, pipeline_up_to=2)
    stats = runner.run(iter([(frame.copy(), i / 30, "v") for i in range(4)]))
    assert stats.predicted_frames == 4
    assert [n for n, _ in client.threads] == [faces] * 4
    assert all((t is not threading.current_thread()) == overlapped for _, t in client.threads)


def test_the_pipelined_flag_alone_means_always_and_auto_is_the_default():
    parser = webcam.build_parser()
    assert parser.parse_args([]).pipelined == "auto"
    assert parser.parse_args(["--pipelined"]).pipelined == "yes"
    assert parser.parse_args(["--pipelined", "no"]).pipelined == "no"


def test_a_sequential_frame_after_an_overlapped_one_waits_for_it_first():
    """auto: 1 face (overlapped), then 3 faces (sequential), then 1 again: the overlapped frame's
    Predict is finished before the next one starts, and frames are written in order."""
    import threading

    class Client:
        target, in_flight, most, sizes = "fake", 0, 0, []

        def predict(self, crops):
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            threading.Event().wait(0.01)
            self.in_flight -= 1
            self.sizes.append(len(crops))
            return np.full((len(crops), 7), 1 / 7)

    client = Client()
    frame = np.full((120, 400, 3), 90, np.uint8)
    counts = iter([1, 3, 1, 3])
    boxes = [(10 + 130 * i, 30, 60, 60) for i in range(3)]
    detector = lambda image: [webcam.detectors.Detection(box, None) for box in boxes[:next(counts)]]  # noqa: E731
    results = []
    runner = webcam.WebcamRunner(client, detect_every=1, detector=detector, pipeline_up_to=1,
                                 on_frame=lambda result, image: results.append(result))
    stats = runner.run(iter([(frame.copy(), i / 30, "v") for i in range(4)]))
    assert stats.predicted_frames == 4 and client.most == 1
    assert [len(r.boxes) for r in results] == [1, 3, 1, 3]
