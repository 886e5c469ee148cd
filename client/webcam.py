"""`fer-webcam`: the paper's live module over TF Serving's gRPC API.

camera / video / image(s) -> gray frame -> Haar cascade faces -> 48x48 crops -> ONE Predict
for all the faces of the frame -> overlay (box + top-2 emotions) -> timeline CSV / plot.

Two knobs trade accuracy of timing for speed (bench/results/webcam.md): `--pipelined`
overlaps the Predict of frame t with the capture and detection of frame t+1 (it hides the
network round trip to a remote server; with the server on the same 2 cores it only adds a
frame of latency), and `--detect-every N` runs the cascade on every Nth frame and reuses the
boxes in between (faces move little in 33 ms). When the server is unreachable or
restarting, frames keep flowing with boxes only, the overlay and the log say so, and the
gRPC channel reconnects by itself.
"""

import argparse
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from client import faces as face_ops
from client.tfserving import FerClient, ServingError
from client.timeline import TimelineWriter, plot_timeline

log = logging.getLogger("fer.webcam")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
STAGES = ("capture", "detect", "preprocess", "predict", "draw")
BOX_COLOUR, TEXT_COLOUR, ALERT_COLOUR = (178, 114, 0), (255, 255, 255), (0, 94, 213)  # BGR: Okabe-Ito blue, vermillion


class SourceError(RuntimeError):
    """A camera that does not open, a file that is missing or unreadable."""


def open_source(spec: str) -> Tuple[Iterator[Tuple[np.ndarray, float]], str]:
    """(frames as (BGR image, time in seconds), a description)."""
    if spec.isdigit():
        capture = cv2.VideoCapture(int(spec))
        if not capture.isOpened():
            raise SourceError(f"camera {spec} could not be opened (is one attached and free? "
                              f"try another index, or a video file)")
        return _camera_frames(capture), f"camera {spec}"
    if os.path.isdir(spec):
        files = sorted(f for f in os.listdir(spec) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise SourceError(f"{spec}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this directory")
        return _image_frames([os.path.join(spec, f) for f in files]), f"{len(files)} images in {spec}"
    if not os.path.exists(spec):
        raise SourceError(f"{spec}: no such file, directory or camera index")
    if spec.lower().endswith(IMAGE_EXTENSIONS):
        return _image_frames([spec]), f"image {spec}"
    capture = cv2.VideoCapture(spec)
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        raise SourceError(f"{spec}: not a video OpenCV can read")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    return _video_frames(capture, first, fps), f"video {spec} ({fps:.0f} fps)"


def _camera_frames(capture) -> Iterator[Tuple[np.ndarray, float]]:
    start = time.monotonic()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise SourceError("the camera stopped delivering frames")
            yield frame, time.monotonic() - start
    finally:
        capture.release()


def _video_frames(capture, first, fps) -> Iterator[Tuple[np.ndarray, float]]:
    index, frame = 0, first
    try:
        while frame is not None:
            yield frame, index / fps
            index += 1
            ok, frame = capture.read()
            frame = frame if ok else None
    finally:
        capture.release()


def _image_frames(paths: List[str]) -> Iterator[Tuple[np.ndarray, float]]:
    for index, path in enumerate(paths):
        frame = cv2.imread(path)
        if frame is None:
            raise SourceError(f"{path}: not an image OpenCV can read")
        yield frame, float(index)


@dataclass
class FrameResult:
    index: int
    time_s: float
    boxes: List[face_ops.Box]
    face_ids: List[int]
    probabilities: Optional[np.ndarray]  # [faces, 7], None when the server did not answer
    timings: Dict[str, float]  # seconds per stage
    latency_s: float  # capture start to overlay drawn


@dataclass
class RunStats:
    frames: List[FrameResult] = field(default_factory=list)
    server_errors: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return len(self.frames) / self.seconds if self.seconds else 0.0


def draw_overlay(frame: np.ndarray, boxes, face_ids, probabilities, server_down: Optional[str]) -> None:
    for i, (x, y, w, h) in enumerate(boxes):
        cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOUR, 2)
        if probabilities is not None:
            (e1, p1), (e2, p2) = face_ops.top2(probabilities[i])
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
    def __init__(self, client: FerClient, *, smoothing: float = 1.0, timeline: Optional[TimelineWriter] = None,
                 display: bool = False, pipelined: bool = False, detect_every: int = 1, cascade=None,
                 on_frame: Optional[Callable[[FrameResult, np.ndarray], None]] = None):
        self.client, self.smoothing, self.timeline = client, smoothing, timeline
        self.display, self.pipelined, self.on_frame = display, pipelined, on_frame
        self.detect_every = max(1, detect_every)
        self._last_boxes: List[face_ops.Box] = []
        self.cascade = cascade if cascade is not None else face_ops.load_cascade()
        self.tracker = face_ops.Tracker()
        self.server_down: Optional[str] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    def _predict(self, crops: np.ndarray):
        start = time.perf_counter()
        try:
            return self.client.predict(crops), None, time.perf_counter() - start
        except ServingError as e:
            if not e.unavailable:
                raise  # a request this client built wrong: a bug, not an outage
            return None, e, time.perf_counter() - start

    def _finish(self, pending, stats: RunStats) -> bool:
        index, time_s, frame, boxes, ids, future, timings, started = pending
        probabilities = None
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
            if probabilities is not None and self.smoothing < 1.0:
                probabilities = np.stack([self.tracker.smooth(fid, p, self.smoothing)
                                          for fid, p in zip(ids, probabilities)])
        t = time.perf_counter()
        draw_overlay(frame, boxes, ids, probabilities, self.server_down)
        timings["draw"] = time.perf_counter() - t
        if probabilities is not None and self.timeline is not None:
            for box, fid, p in zip(boxes, ids, probabilities):
                (first, _), (second, _) = face_ops.top2(p)
                self.timeline.write(index, time_s, fid, box, p, first, second)
        result = FrameResult(index, time_s, list(boxes), list(ids), probabilities, timings,
                             time.perf_counter() - started)
        stats.frames.append(result)
        if self.on_frame:
            self.on_frame(result, frame)
        if self.display:
            cv2.imshow("fer-webcam", frame)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                return False
        return True

    def run(self, frames: Iterator[Tuple[np.ndarray, float]], max_frames: Optional[int] = None) -> RunStats:
        stats, pending, start = RunStats(), None, time.perf_counter()
        index = 0
        try:
            while max_frames is None or index < max_frames:
                started = time.perf_counter()
                try:
                    frame, time_s = next(frames)
                except StopIteration:
                    break
                timings = {"capture": time.perf_counter() - started}
                t = time.perf_counter()
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
                if index % self.detect_every == 0:
                    self._last_boxes = face_ops.detect_faces(gray, self.cascade)
                boxes = self._last_boxes
                timings["detect"] = time.perf_counter() - t
                t = time.perf_counter()
                crops = face_ops.crop_faces(gray, boxes)
                ids = self.tracker.update(boxes)
                timings["preprocess"] = time.perf_counter() - t
                timings["predict"] = 0.0
                future = self._executor.submit(self._predict, crops) if boxes else None
                current = (index, time_s, frame, boxes, ids, future, timings, started)
                if not self.pipelined:
                    if not self._finish(current, stats):
                        break
                else:
                    if pending is not None and not self._finish(pending, stats):
                        pending = None
                        break
                    pending = current
                index += 1
            if pending is not None:
                self._finish(pending, stats)
        finally:
            stats.seconds = time.perf_counter() - start
            self._executor.shutdown(wait=True)
            if self.display:
                cv2.destroyAllWindows()
        return stats


def _check_display() -> None:
    try:
        cv2.namedWindow("fer-webcam")
    except cv2.error:
        raise SourceError("this OpenCV build has no window support (opencv-python-headless): run with "
                          "--no-display, or install opencv-python for a window") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fer-webcam", description="live facial emotion recognition over TF Serving")
    p.add_argument("--server", default="127.0.0.1:8500", help="TF Serving gRPC HOST:PORT")
    p.add_argument("--source", default="0", help="camera index, video file, image file or directory of images")
    p.add_argument("--model-name", default="fer")
    p.add_argument("--no-display", action="store_true", help="headless: no window")
    p.add_argument("--timeline", help="CSV: one row per detected face per processed frame")
    p.add_argument("--timeline-plot", help="PNG: each face's emotions over time (needs --timeline)")
    p.add_argument("--max-frames", type=int)
    p.add_argument("--smoothing", type=float, default=1.0,
                   help="exponential smoothing per face: weight of the newest frame in (0, 1]; 1 = off")
    p.add_argument("--timeout", type=float, default=0.5, help="seconds per Predict before the frame goes on without it")
    p.add_argument("--pipelined", action="store_true",
                   help="overlap each frame's Predict with the next frame's detection (for a remote server)")
    p.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="run the face detector on every Nth frame, reusing its boxes in between")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.timeline_plot and not args.timeline:
        print("error: --timeline-plot needs --timeline", file=sys.stderr)
        return 2
    if not 0.0 < args.smoothing <= 1.0:
        print("error: --smoothing must be in (0, 1]", file=sys.stderr)
        return 2
    try:
        frames, description = open_source(args.source)
        if not args.no_display:
            _check_display()
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # No retries inside a frame: a live feed moves on; the channel reconnects by itself.
    client = FerClient(args.server, model_name=args.model_name, timeout_s=args.timeout, retries=0)
    timeline = TimelineWriter(args.timeline) if args.timeline else None
    log.info("fer-webcam: %s -> %s", description, args.server)
    try:
        stats = WebcamRunner(client, smoothing=args.smoothing, timeline=timeline, display=not args.no_display,
                             pipelined=args.pipelined, detect_every=args.detect_every).run(frames, args.max_frames)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if timeline:
            timeline.close()
        client.close()
    detected = sum(len(f.boxes) for f in stats.frames)
    print(f"{len(stats.frames)} frames, {detected} faces, {stats.fps:.1f} frames/s"
          + (f", {stats.server_errors} frames without the server" if stats.server_errors else ""))
    if args.timeline_plot:
        plot_timeline(args.timeline, args.timeline_plot)
        print(f"timeline plot: {args.timeline_plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
