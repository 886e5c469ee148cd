"""The live pipeline on generated 640x480 videos whose faces are known: frames/s, latency,
faces found, id stability and agreement, for detection on every frame (the reference) and
for tracking between detections (fer-webcam's default), over gRPC to a server on the same
machine and with the model in-process, all in one run.

Videos (tests/client/video.py scene(), 300 frames at 30 fps, written as MJPG and read back):
scikit-image's astronaut face moving on a textured background, 1 face ~150 px wide, 4 faces
~110 px, 8 faces ~45 px and 8 faces ~40 px (faces that cover each other by more than 30 % are
left out of the truth for those frames).

Per run:
- fps, latency p50/p95 (capture start to overlay drawn), detector runs;
- recall: the share of true faces with a shown box (IoU >= 0.3) over all frames, and the
  share of frames in which every true face was found;
- ids: distinct face ids shown (the video has as many faces as it says);
- stray: shown boxes that match no true face (IoU < 0.3), per frame (a box on a face that
  another covers by more than 30 % counts as stray: that face is out of the truth);
- agreement: the share of found faces whose shown top-1 equals the model's top-1 on the crop
  of the TRUE box in the same frame (the astronaut has no emotion label; this measures what
  the boxes cost the predictions, against a perfect detector). Accuracy ratios against
  every-frame detection are agreement ratios.

    .venv/bin/python bench/webcam_bench.py [--frames 300] [--detect-every 1 4 8] [--engines grpc inprocess]
        [--pipelined no yes auto] [--scenes 1x150 4x110]

`--pipelined yes` runs the tracking settings (detect-every > 1) over gRPC with the Predict of
each frame overlapped with the next frame's work as well (fer-webcam --pipelined); `auto`
overlaps it for frames with at most client.webcam.AUTO_PIPELINE_FACES faces (fer-webcam
--server's default).

Goals (issue 22): the default settings find >= 95 % of the faces at every width from 40 px;
>= 60 fps with p95 <= 25 ms for 4 faces, >= 120 fps for 1 face, >= 30 fps for 8 faces; agreement
>= 0.97x that of every-frame detection. Results: bench/results/webcam.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from serving_common import ServerProcess, percentile  # noqa: E402

SCENES = {"1x150": (1, 150), "4x110": (4, 110), "8x45": (8, 45), "8x40": (8, 40)}


def write_scene(path, faces, width, frames, seed=0):
    """The scene as an MJPG video at `path` and its truth [[(face, box)], ...] per frame."""
    import cv2

    from tests.client.video import scene

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    truth = []
    for frame, faces_now in scene(faces, width, frames, seed=seed):
        writer.write(frame)
        truth.append([box for _, box in faces_now])
    writer.release()
    return truth


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        return platform.processor()


def run_once(engine, video, truth, detect_every, pipelined="no"):
    import cv2

    from client import faces as face_ops
    from client import webcam

    frames = webcam.open_source(video).frames
    runner = webcam.WebcamRunner(engine, detect_every=detect_every, pipelined=pipelined == "yes",
                                 pipeline_up_to=webcam.AUTO_PIPELINE_FACES if pipelined == "auto" else 0)
    kept = []

    runner.on_frame = lambda result, frame: kept.append(result)
    stats = runner.run(frames)
    latencies = [f.latency_s for f in stats.frames]
    predicts = [f.timings["predict"] for f in stats.frames if f.boxes]
    # Reference predictions on the true boxes, frame by frame (after the timed run).
    capture = cv2.VideoCapture(video)
    found = total = all_found = agree = compared = stray = 0
    ids = set()
    for result, boxes in zip(kept, truth):
        ok, frame = capture.read()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        ids.update(result.face_ids)
        hits = []
        for box in boxes:
            overlaps = [face_ops.iou(box, shown) for shown in result.boxes]
            best = int(np.argmax(overlaps)) if overlaps else -1
            hits.append(best if overlaps and overlaps[best] >= 0.3 else -1)
        found += sum(h >= 0 for h in hits)
        stray += len(result.boxes) - len({h for h in hits if h >= 0})
        total += len(boxes)
        all_found += all(h >= 0 for h in hits)
        if result.raw_probabilities is not None and any(h >= 0 for h in hits):
            reference = engine.predict(face_ops.crop_faces(gray, [b for b, h in zip(boxes, hits) if h >= 0]))
            shown = result.raw_probabilities[[h for h in hits if h >= 0]]
            agree += int((reference.argmax(1) == shown.argmax(1)).sum())
            compared += len(shown)
    capture.release()
    return {"frames": len(stats.frames), "fps": round(stats.fps, 1),
            "latency_p50_ms": round(percentile(latencies, 50), 1), "latency_p95_ms": round(percentile(latencies, 95), 1),
            "predict_ms_mean": round(float(np.mean(predicts)) * 1000, 2) if predicts else None,
            "detector_runs": stats.detections, "recall": round(found / total, 4) if total else None,
            "frames_all_found": round(all_found / len(kept), 4) if kept else None, "ids": len(ids),
            "stray_per_frame": round(stray / len(kept), 3) if kept else None,
            "agreement": round(agree / compared, 4) if compared else None,
            "answered": sum(f.probabilities is not None for f in stats.frames)}


def main():
    from core import features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    p.add_argument("--detect-every", type=int, nargs="+", default=[1, 4])
    p.add_argument("--engines", nargs="+", default=["grpc", "inprocess"], choices=["grpc", "inprocess"])
    p.add_argument("--pipelined", nargs="+", default=["no"], choices=["no", "yes", "auto"],
                   help="gRPC tracking runs: sequential, pipelined, pipelined up to AUTO_PIPELINE_FACES faces "
                        "(fer-webcam --server's default), or several")
    p.add_argument("--model", default=features.SHIPPED_MODEL_BASE_PATH, help="a TF Serving model base path")
    args = p.parse_args()

    from client import webcam
    from client.tfserving import FerClient

    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(),
              "cores": os.cpu_count(), "frames": args.frames, "model": args.model, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, f"{name}.avi") for name in args.scenes}
        videos = {name: (path, write_scene(path, *SCENES[name], args.frames)) for name, path in paths.items()}
        server = ServerProcess(os.path.abspath(args.model)) if "grpc" in args.engines else None
        try:
            engines = {}
            if server:
                engines["grpc"] = FerClient(server.target, timeout_s=2.0, retries=0)
            if "inprocess" in args.engines:
                engines["inprocess"] = webcam.InProcessEngine(args.model)
            for engine_name, engine in engines.items():
                for name, (video, truth) in videos.items():
                    run_once(engine, video, truth, 1)  # warm: cascade, channel, graph
                    for k in args.detect_every:
                        modes = args.pipelined if engine_name == "grpc" and k > 1 else ["no"]
                        for mode in modes:
                            result = {"engine": engine_name, "scene": name, "detect_every": k,
                                      "pipelined": mode, **run_once(engine, video, truth, k, mode)}
                            report["runs"].append(result)
                            print(json.dumps(result), flush=True)
            for engine in engines.values():
                engine.close()
        finally:
            if server:
                server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
