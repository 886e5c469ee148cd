"""`fer-webcam`: the paper's live module, with the model in this process (the shipped model's
int8 TFLite twin by default) or over TF Serving's gRPC API (`--server`).

camera / video / image(s) -> faces found by the detector and followed between its runs by
optical flow (client/tracking.py) -> 48x48 gray crops -> ONE Predict for all the faces of the
frame -> each face's probabilities smoothed and its shown emotion held by hysteresis ->
overlay (box + top-2 emotions) -> timeline CSV / JSON lines / annotated video or images / plot.

`--pipelined` overlaps the Predict of frame t with the capture and tracking of frame t+1 (it
hides the network round trip to a server). By default (`auto`) a run with `--server` does so
while a frame has at most AUTO_PIPELINE_FACES faces (one): there the round trip is most of a
frame's time and the frame of delay keeps p95 latency within 25 ms; with more faces each
Predict is longer and the delay would not (bench/results/webcam.md). When the server is unreachable or
restarting, frames keep flowing with boxes only, the overlay and the log say so, and the gRPC
channel reconnects by itself. bench/results/webcam.md measures it.
"""

import argparse
import logging
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from client import detectors, tracking
from client import faces as face_ops
from client.timeline import AnnotatedWriter, JsonlWriter, TimelineWriter, plot_timeline
from core import arg_types, features, quiet

if TYPE_CHECKING:
    from client.tfserving import FerClient

log = logging.getLogger("fer.webcam")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
STAGES = ("capture", "detect", "preprocess", "predict", "draw")
# Live video needs the detector that keeps up: the Haar cascade at half scale takes 28 ms a
# 640x480 frame here against MTCNN's 258 ms (bench/results/detectors.md); --detector mtcnn
# finds more faces where frames can wait (photos, recorded video).
WEBCAM_DETECTOR = "haar"
# The cascade at full scale from 36 px finds faces from 40 px wide, too slow for every frame
# but not for every LIVE_DETECT_EVERY-th on its own thread, boxes carried by optical flow in
# between (client/tracking.py; both chosen in bench/results/webcam.md).
LIVE_HAAR_OPTIONS = {"min_size": 36, "detect_scale": 1.0}
LIVE_DETECT_EVERY = 4
# `--pipelined auto` over gRPC: overlap the Predict while a frame has at most this many faces.
# Measured on 2 cores, the server on the same machine (bench/results/webcam.md, 2026-11-30):
# with 1, 1 face 140.3 fps (sequential 114.6) at p95 21.2 ms, and 4 faces keep p95 23.1 ms;
# with 2, 4 faces' p95 rose to 28.3 ms (the scene's frames with 2 faces switch modes).
AUTO_PIPELINE_FACES = 1
# What a face shows: its probabilities smoothed (weight of the newest frame; 1: not smoothed),
# and the label on show changing only when another leads it by the margin. Chosen with the
# shipped version 3 on generated videos of the valid carve's faces at 30 frames/s
# (bench/results/webcam_steadiness.md, 2026-12-01), by a rule written before the run: of the
# rules that meet the three goals in all 8 videos live and leave at most 1 % of the changes
# unfollowed, the most accurate: flicker 0.10x the raw output's, reaction p90 0.033 s, accuracy
# +0.95 points. (0.5 and 0.05, chosen with version 1, let version 3's flatter probabilities
# flicker at 0.29x.) The margins tried stop at 0.3: this is the most accurate rule tried.
LIVE_SMOOTHING, LIVE_HYSTERESIS = 1.0, 0.3
BOX_COLOUR, TEXT_COLOUR, ALERT_COLOUR = (178, 114, 0), (255, 255, 255), (0, 94, 213)  # BGR: Okabe-Ito blue, vermillion


class SourceError(RuntimeError):
    """A camera that does not open, a file that is missing or unreadable."""


ENGINES = ("auto", "tflite", "savedmodel")


class InProcessEngine:
    """The model in this process, with the interface of the gRPC client: no server, no network
    round trip. `engine`: "tflite", the int8 twin the Trainer writes beside the SavedModel
    (within 0.5 points of it on PublicTest, several times faster: bench/results/tflite.md);
    "savedmodel", its serving_default; "auto", the twin where the model has one."""

    def __init__(self, path: str = features.SHIPPED_MODEL_BASE_PATH, engine: str = "auto"):
        from client.analyze import SavedModelPredictor, TflitePredictor, resolve_saved_model

        version = resolve_saved_model(path)
        if engine == "tflite" or (engine == "auto" and os.path.isfile(os.path.join(version, TflitePredictor.FILE))):
            self._model = TflitePredictor(version)
        else:
            self._model = SavedModelPredictor(version)
        self.engine = "tflite" if isinstance(self._model, TflitePredictor) else "savedmodel"
        self.target = f"in-process {self.engine} {self._model.path}"
        self.last_version = os.path.basename(version)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self._model.predict(faces)

    def close(self) -> None:
        self._model.close()


def check_server_address(address: str) -> str:
    """`--server` is TF Serving's gRPC HOST:PORT; a URL or the REST port is refused in one line."""
    host, _, port = address.rpartition(":")
    if "://" in address or "/" in address or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{address!r}: --server takes TF Serving's gRPC HOST:PORT "
                                         f"(e.g. 127.0.0.1:8500), not a URL")
    if int(port) == features.TF_SERVING_REST_PORT:
        raise argparse.ArgumentTypeError(f"{address!r}: {features.TF_SERVING_REST_PORT} is TF Serving's REST port; "
                                         f"--server takes the gRPC HOST:PORT (default {features.TF_SERVING_GRPC_PORT})")
    return address


@dataclass
class Source:
    """Frames as (BGR image, time in seconds (None for photos), where it came from: a file
    name, the video, the camera) with what the run reports about them."""
    frames: Iterator[Tuple[np.ndarray, Optional[float], str]]
    description: str
    kind: str  # "camera", "video" or "images"
    fps: float = 30.0
    skipped: List[str] = field(default_factory=list)  # unreadable images of a folder, skipped


def open_source(spec: str) -> Source:
    if spec.isdigit():
        capture = cv2.VideoCapture(int(spec))
        if not capture.isOpened():
            raise SourceError(f"camera {spec} could not be opened (is one attached and free? "
                              f"try another index, or a video file)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        return Source(_camera_frames(capture, f"camera {spec}"), f"camera {spec}", "camera", fps)
    if os.path.isdir(spec):
        files = sorted(f for f in os.listdir(spec) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise SourceError(f"{spec}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this directory")
        source = Source(iter(()), f"{len(files)} images in {spec}", "images", 1.0)
        source.frames = _image_frames([os.path.join(spec, f) for f in files], source.skipped)
        return source
    if not os.path.exists(spec):
        raise SourceError(f"{spec}: no such file, directory or camera index")
    if spec.lower().endswith(IMAGE_EXTENSIONS):
        return Source(_image_frames([spec], None), f"image {spec}", "images", 1.0)
    capture = cv2.VideoCapture(spec)
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        raise SourceError(f"{spec}: not a video OpenCV can read")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return Source(_video_frames(capture, first, fps, spec, count), f"video {spec} ({fps:.0f} fps)", "video", fps)


def _camera_frames(capture, name: str) -> Iterator[Tuple[np.ndarray, float, str]]:
    start = time.monotonic()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise SourceError("the camera stopped delivering frames")
            yield frame, time.monotonic() - start, name
    finally:
        capture.release()


def _video_frames(capture, first, fps, name: str, count: int = 0) -> Iterator[Tuple[np.ndarray, float, str]]:
    """The video's frames; one that cannot be decoded before the end its header announces
    (`count`) ends the run with an error naming it (the frames before it are kept)."""
    index, frame = 0, first
    try:
        while frame is not None:
            yield frame, index / fps, name
            index += 1
            ok, frame = capture.read()
            frame = frame if ok else None
        if count and index < count:
            raise SourceError(f"{name}: frame {index + 1} of {count} could not be decoded; "
                              f"stopped after {index} frames")
    finally:
        capture.release()


def _image_frames(paths: List[str], skipped: Optional[List[str]]) -> Iterator[Tuple[np.ndarray, None, str]]:
    """One frame an image, with no time (photos have none). An unreadable image of a folder
    (`skipped` given) is skipped with a warning and counted; a single image that cannot be
    read is an error."""
    for path in paths:
        frame = cv2.imread(path)
        if frame is None:
            if skipped is None:
                raise SourceError(f"{path}: not an image OpenCV can read")
            log.warning("%s: not an image OpenCV can read; skipped", path)
            skipped.append(path)
            continue
        yield frame, None, path


@dataclass
class FrameResult:
    index: int
    time_s: Optional[float]  # None: a photo
    source: str
    boxes: List[face_ops.Box]
    confidences: List[Optional[float]]
    face_ids: List[int]
    probabilities: Optional[np.ndarray]  # [faces, 7], None when the server did not answer
    timings: Dict[str, float]  # seconds per stage
    latency_s: float  # capture start to overlay drawn
    raw_probabilities: Optional[np.ndarray] = None  # before smoothing ([faces, 7]); probabilities are smoothed


@dataclass
class RunStats:
    frames: List[FrameResult] = field(default_factory=list)
    server_errors: int = 0
    seconds: float = 0.0
    detections: int = 0  # detector runs

    @property
    def predicted_frames(self) -> int:
        return sum(1 for f in self.frames if f.probabilities is not None)

    @property
    def fps(self) -> float:
        return len(self.frames) / self.seconds if self.seconds else 0.0


def draw_overlay(frame: np.ndarray, boxes, face_ids, probabilities, server_down: Optional[str],
                 labels: Optional[List[int]] = None) -> None:
    for i, (x, y, w, h) in enumerate(boxes):
        cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOUR, 2)
        if probabilities is not None:
            (e1, p1), (e2, p2) = face_ops.top2(probabilities[i], labels[i] if labels else None)
            lines = [f"#{face_ids[i]} {e1} {p1:.0%}", f"{e2} {p2:.0%}"]
        else:
            lines = [f"#{face_ids[i]} ..."]
        for j, text in enumerate(lines):
            origin = (x, max(14, y - 8 - 18 * (len(lines) - 1 - j)))
            cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOUR, 1, cv2.LINE_AA)
    if server_down:
        cv2.rectangle(frame, (0, 0), (frame.shape[1], 24), ALERT_COLOUR, -1)
        cv2.putText(frame, server_down, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOUR, 1, cv2.LINE_AA)


class WebcamRunner:
    def __init__(self, client: "FerClient", *, smoothing: float = LIVE_SMOOTHING, hysteresis: float = LIVE_HYSTERESIS,
                 timeline: Optional[TimelineWriter] = None,
                 jsonl: Optional[JsonlWriter] = None, annotated: Optional[AnnotatedWriter] = None,
                 display: bool = False, pipelined: bool = False, pipeline_up_to: int = 0,
                 detect_every: int = LIVE_DETECT_EVERY, detector=None,
                 still_images: bool = False, on_frame: Optional[Callable[[FrameResult, np.ndarray], None]] = None):
        self.client, self.smoothing, self.timeline, self.jsonl = client, smoothing, timeline, jsonl
        self.hysteresis = hysteresis
        self.annotated = annotated  # each overlaid frame, as a video or images
        self.display, self.pipelined, self.on_frame = display, pipelined, on_frame
        # Without `pipelined`: overlap a frame's Predict only while it has at most this many faces
        # (fer-webcam sets it with --server only: a remote round trip is what overlapping hides).
        self.pipeline_up_to = pipeline_up_to
        # Photos are unrelated frames: each is searched on its own, and ids start again.
        self.still_images = still_images
        self.detect_every = 1 if still_images else max(1, detect_every)
        self.detector = detector if detector is not None else live_detector()
        self.faces = tracking.LiveFaces(self.detector, self.detect_every)
        self.server_down: Optional[str] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        from client.tfserving import ServingError  # TensorFlow's protos: loaded once a run starts
        self._serving_error = ServingError

    def _predict(self, crops: np.ndarray):
        start = time.perf_counter()
        try:
            return self.client.predict(crops), None, time.perf_counter() - start
        except self._serving_error as e:
            if not e.unavailable:
                raise  # a request this client built wrong: a bug, not an outage
            return None, e, time.perf_counter() - start

    def _finish(self, pending, stats: RunStats) -> bool:
        index, time_s, name, frame, shown, future, timings, started = pending
        found = [detectors.Detection(t.box, t.confidence) for t in shown]
        boxes, ids = [d.box for d in found], [t.face_id for t in shown]
        probabilities = raw = labels = None
        if future is not None:
            probabilities, error, timings["predict"] = future.result()
            if error is not None:
                stats.server_errors += 1
                if self.server_down is None:
                    log.warning("server %s unavailable (%s); continuing without predictions, reconnecting",
                                self.client.target, error)
                self.server_down = f"server {self.client.target} unavailable - reconnecting"
            elif self.server_down is not None:
                log.info("server %s is back (model version %s)", self.client.target, self.client.last_version)
                self.server_down = None
            if probabilities is not None:
                raw = probabilities
                probabilities = np.stack([tracking.smooth(track, p, self.smoothing) for track, p in zip(shown, raw)])
                labels = [tracking.shown_label(track, q, self.hysteresis) for track, q in zip(shown, probabilities)]
        t = time.perf_counter()
        draw_overlay(frame, boxes, ids, probabilities, self.server_down, labels)
        timings["draw"] = time.perf_counter() - t
        if self.annotated is not None:
            self.annotated.write(frame, name)
        if probabilities is not None:
            for detection, fid, p, q, label in zip(found, ids, raw, probabilities, labels):
                (first, _), (second, _) = face_ops.top2(q, label)
                for writer in (self.timeline, self.jsonl):
                    if writer is not None:
                        writer.write(index, time_s, name, fid, detection.box, detection.confidence, p, q, first,
                                     second)
        result = FrameResult(index, time_s, name, list(boxes), [d.confidence for d in found], list(ids),
                             probabilities, timings, time.perf_counter() - started, raw)
        stats.frames.append(result)
        if self.on_frame:
            self.on_frame(result, frame)
        if self.display:
            cv2.imshow("fer-webcam", frame)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                return False
        return True

    def run(self, frames: Iterator[Tuple[np.ndarray, float, str]], max_frames: Optional[int] = None) -> RunStats:
        """frames: (BGR frame, time in seconds, source name), as Source.frames gives them."""
        stats, pending, start = RunStats(), None, time.perf_counter()
        index, first_shape = 0, None
        try:
            while max_frames is None or index < max_frames:
                started = time.perf_counter()
                try:
                    frame, time_s, *where = next(frames)
                except StopIteration:
                    break
                name = where[0] if where else ""
                if not self.still_images:
                    if first_shape is None:
                        first_shape = frame.shape
                    elif frame.shape != first_shape:
                        raise SourceError(f"{name}: frame {index + 1} is {frame.shape[1]}x{frame.shape[0]}, the "
                                          f"frames before it {first_shape[1]}x{first_shape[0]}; stopped")
                timings = {"capture": time.perf_counter() - started}
                t = time.perf_counter()
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
                if self.still_images:
                    self.faces = tracking.LiveFaces(self.detector, 1)
                shown = self.faces.update(frame, gray, index)
                timings["detect"] = time.perf_counter() - t  # tracking included
                t = time.perf_counter()
                crops = face_ops.crop_faces(gray, [track.box for track in shown])
                timings["preprocess"] = time.perf_counter() - t
                timings["predict"] = 0.0
                pipelined = self.pipelined or 0 < len(shown) <= self.pipeline_up_to
                if pending is not None and not pipelined:
                    # The overlapped frame first: one Predict in flight at a time, frames in order.
                    finished, pending = self._finish(pending, stats), None
                    if not finished:
                        break
                if not shown:
                    future = None
                elif pipelined:
                    future = self._executor.submit(self._predict, crops)
                else:
                    # In this thread: handing the Predict to another thread and waiting for it
                    # costs a thread switch each way, up to a millisecond or more a frame on a
                    # busy machine (the bench's profile), and overlaps nothing.
                    future = Future()
                    future.set_result(self._predict(crops))
                current = (index, time_s, name, frame, shown, future, timings, started)
                if pending is not None:  # the previous frame, overlapped with this one: it goes first
                    finished, pending = self._finish(pending, stats), None
                    if not finished:
                        break
                if pipelined:
                    pending = current
                elif not self._finish(current, stats):
                    break
                index += 1
            if pending is not None:
                self._finish(pending, stats)
        finally:
            stats.seconds = time.perf_counter() - start
            stats.detections = self.faces.detections_run
            self.faces.close()
            self._executor.shutdown(wait=True)
            if self.display:
                cv2.destroyAllWindows()
        return stats


def live_detector(name: str = WEBCAM_DETECTOR):
    """The detector fer-webcam runs: the cascade with its live settings, or another by name."""
    return detectors.make(name, **(LIVE_HAAR_OPTIONS if name == "haar" else {}))


def has_display() -> bool:
    """Whether a window can be opened: a window system to draw on and an OpenCV built with a
    GUI (opencv-python-headless has none)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("fer-webcam")
        cv2.destroyWindow("fer-webcam")
    except cv2.error:
        return False
    return True


def _http1_server(client) -> bool:
    """Whether the server at the client's target speaks HTTP/1.x, not gRPC (someone gave the
    REST port): gRPC says so in its error. Any other failure is left to the run, which goes on
    without predictions until the server answers."""
    from client.tfserving import ServingError

    try:
        client.status()
    except ServingError as e:
        # grpc-core: "Trying to connect an http1.x server", or "Failed parsing HTTP/2 (Expected
        # SETTINGS frame ...)" when the HTTP/1.x answer arrives first.
        text = str(e).lower()
        return "http1" in text or "failed parsing http/2" in text
    return False


def build_parser() -> argparse.ArgumentParser:
    p = arg_types.Parser(prog="fer-webcam", description="live facial emotion recognition: the model in this "
                                                        "process, or over TF Serving's gRPC API")
    p.add_argument("--version", action="version", version=f"%(prog)s {arg_types.version()}")
    p.add_argument("--server", type=check_server_address,
                   help="TF Serving's gRPC HOST:PORT (e.g. 127.0.0.1:8500); without it the model runs in this process")
    p.add_argument("--model", metavar="PATH",
                   help="in-process model: a SavedModel or a TF Serving model base path (default: the shipped model)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="in-process: the model's int8 TFLite twin, its SavedModel, or auto: the twin where there is "
                        "one (default: %(default)s)")
    p.add_argument("--source", default="0",
                   help="camera index, video file, image file or folder of images (default: camera %(default)s)")
    p.add_argument("--model-name", default=features.SERVING_MODEL_NAME, help="TF Serving model (default: %(default)s)")
    p.add_argument("--detector", choices=detectors.DETECTOR_NAMES, default=WEBCAM_DETECTOR,
                   help="face detector (default: %(default)s, the one that keeps up with live video; mtcnn finds "
                        "more faces at ~9x the time: bench/results/detectors.md)")
    p.add_argument("--no-display", action="store_true",
                   help="no window (automatic when there is no window system or OpenCV has no GUI)")
    p.add_argument("--timeline", type=arg_types.output_file,
                   help="CSV: one row per detected face per processed frame (source, box, confidence, emotions)")
    p.add_argument("--jsonl", help="the same as JSON lines, to this file ('-': stdout)")
    p.add_argument("--save-annotated", metavar="OUT",
                   help="the overlaid frames: OUT.mp4 for a camera or video, a folder for images")
    p.add_argument("--timeline-plot", type=arg_types.output_file,
                   help="PNG: each face's emotions over time (needs --timeline)")
    p.add_argument("--max-frames", type=arg_types.positive_int, help="stop after N frames (default: all)")
    p.add_argument("--smoothing", type=arg_types.ranged(float, 0.0, 1.0, "a weight in (0, 1]", low_open=True),
                   default=LIVE_SMOOTHING,
                   help="exponential smoothing per face: weight of the newest frame in (0, 1]; 1 = off "
                        "(default: %(default)s)")
    p.add_argument("--hysteresis", type=arg_types.ranged(float, 0.0, 1.0, "a margin in [0, 1]"),
                   default=LIVE_HYSTERESIS,
                   help="the emotion shown changes only when another's smoothed probability leads it by more "
                        "than this; 0 = off (default: %(default)s)")
    p.add_argument("--timeout", type=arg_types.positive_float, default=0.5,
                   help="seconds per Predict before the frame goes on without it (default: %(default)s)")
    p.add_argument("--pipelined", nargs="?", const="yes", default="auto", choices=("auto", "yes", "no"),
                   help="overlap each frame's Predict with the next frame's capture and tracking: yes (the flag "
                        "alone), no, or auto: with --server while a frame has at most "
                        f"{AUTO_PIPELINE_FACES} face(s) (default: %(default)s)")
    p.add_argument("--detect-every", type=arg_types.positive_int, default=LIVE_DETECT_EVERY, metavar="N",
                   help="video: run the face detector on its own thread on every Nth frame (at once when a face is "
                        "lost or something moves where no face is), carrying each face's box by optical flow in "
                        "between; 1: detect on every frame (default: %(default)s)")
    return p


def _check_outputs(args, source: Source) -> None:
    if args.server and (args.model or args.engine != "auto"):
        raise SourceError("--server calls a TF Serving; --model and --engine are for a model run here: give one or "
                          "the other")
    if args.timeline_plot and not args.timeline:
        raise SourceError("--timeline-plot needs --timeline")
    outputs = [(flag, value) for flag, value in (("--timeline", args.timeline), ("--jsonl", args.jsonl),
                                                 ("--save-annotated", args.save_annotated),
                                                 ("--timeline-plot", args.timeline_plot)) if value and value != "-"]
    seen = {}
    for flag, value in outputs:
        where = os.path.realpath(value)
        if where in seen:
            raise SourceError(f"{seen[where]} and {flag} name the same file {value}: give each output its own")
        seen[where] = flag
    if args.save_annotated:
        out = args.save_annotated
        if source.kind == "images" and os.path.isfile(out):
            raise SourceError(f"--save-annotated {out}: images are written to a folder, and this is a file")
        if source.kind != "images" and (os.path.isdir(out) or not out.lower().endswith(".mp4")):
            raise SourceError(f"--save-annotated {out}: a camera or video is written as an .mp4 file")
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise SourceError(f"--save-annotated {out}: the folder {folder} does not exist")
    if args.jsonl and args.jsonl != "-":
        arg_types.output_file(args.jsonl)


def main(argv: Optional[List[str]] = None) -> int:
    quiet.quiet_imports()
    args = build_parser().parse_args(argv)  # before TensorFlow loads: a bad flag costs nothing
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    quiet.quiet_libraries()
    with quiet.native_noise_filtered():  # libpng's and TFLite's lines
        return _run(args)


def _run(args) -> int:
    try:
        source = open_source(args.source)
        _check_outputs(args, source)
        detector = live_detector(args.detector)
    except (SourceError, argparse.ArgumentTypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    display = not args.no_display and has_display()
    if not args.no_display and not display:
        log.info("no window system (or an OpenCV without GUI): running without a window, as --no-display")
    if args.server:
        from client.tfserving import FerClient

        # No retries inside a frame: a live feed moves on; the channel reconnects by itself.
        client = FerClient(args.server, model_name=args.model_name, timeout_s=args.timeout, retries=0)
        speaks_http1 = _http1_server(client)
        if speaks_http1:
            client.close()
            print(f"error: --server {args.server} answers HTTP/1.x (a REST port?); --server takes TF Serving's gRPC "
                  f"HOST:PORT (default port {features.TF_SERVING_GRPC_PORT})", file=sys.stderr)
            return 2
    else:
        try:
            client = InProcessEngine(args.model or features.SHIPPED_MODEL_BASE_PATH, args.engine)
        except (OSError, ValueError) as e:
            print(f"error: --model {args.model}: {e}", file=sys.stderr)
            return 2
    timeline = TimelineWriter(args.timeline) if args.timeline else None
    jsonl = JsonlWriter(args.jsonl) if args.jsonl else None
    annotated = AnnotatedWriter(args.save_annotated, source.kind, source.fps) if args.save_annotated else None
    log.info("fer-webcam: %s -> %s (detector %s)", source.description, client.target, args.detector)
    try:
        stats = WebcamRunner(client, smoothing=args.smoothing, hysteresis=args.hysteresis, timeline=timeline,
                             jsonl=jsonl, annotated=annotated,
                             display=display, pipelined=args.pipelined == "yes",
                             pipeline_up_to=AUTO_PIPELINE_FACES if args.pipelined == "auto" and args.server else 0,
                             detect_every=args.detect_every,
                             detector=detector, still_images=source.kind == "images").run(source.frames,
                                                                                          args.max_frames)
    except BrokenPipeError:
        # `--jsonl - | head`: the reader has all it wants. End quietly, as Unix tools do
        # (stdout now points nowhere, so the interpreter's own flush at exit cannot fail).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SourceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        for writer in (timeline, jsonl, annotated):
            if writer:
                try:
                    writer.close()
                except BrokenPipeError:
                    pass
        client.close()
    detected = sum(len(f.boxes) for f in stats.frames)
    summary = (f"{len(stats.frames)} frames, {detected} faces, {stats.fps:.1f} frames/s"
               + (f", {stats.server_errors} frames without the server" if stats.server_errors else "")
               + (f", {len(source.skipped)} unreadable image(s) skipped" if source.skipped else ""))
    print(summary, file=sys.stderr if args.jsonl == "-" else sys.stdout)
    if annotated:
        print(f"annotated: {args.save_annotated} ({annotated.written} frames)", file=sys.stderr)
    if args.timeline_plot:
        plot_timeline(args.timeline, args.timeline_plot)
        print(f"timeline plot: {args.timeline_plot}", file=sys.stderr if args.jsonl == "-" else sys.stdout)
    if not stats.predicted_frames:
        why = ("the server did not answer" if stats.server_errors else
               "no face was found" if stats.frames else "no frame could be read")
        print(f"error: no frame got a prediction ({why})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
