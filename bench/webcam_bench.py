"""The webcam pipeline on a 640x480 video, server on the same machine (its own process):
frames/s and per-frame latency (p50/p95, capture start to overlay drawn), split into
capture, detect, preprocess, predict, draw; with 1 and with 4 faces; sequential (the
default), pipelined (the Predict of frame t overlaps detection of frame t+1), and with the
detector on every other frame. Each model given is served in turn and measured in the same
run, so the shipped model and the paper's CNN compare on the same machine state.

Goals (the shipped model): >= 60 frames/s and p95 <= 25 ms with four faces in the frame,
>= 120 frames/s with one face, on this 2-core machine.

    .venv/bin/python bench/webcam_bench.py --model shipped=models/pretrained/compact_resnet \
        --model proposed_cnn=runs/demo/serving_model/fer
(a PATH is a TF Serving model base path, or one SavedModel directory)
"""

import argparse
import json
import os
import platform
import tempfile

from serving_common import ServerProcess, percentile

import numpy as np


def run_once(target, video, pipelined, detect_every=1):
    from client import webcam
    from client.tfserving import FerClient

    frames = webcam.open_source(video).frames
    with FerClient(target, timeout_s=2.0, retries=0) as client:
        stats = webcam.WebcamRunner(client, pipelined=pipelined, detect_every=detect_every).run(frames)
    latencies = [f.latency_s for f in stats.frames]
    stages = {s: {"mean_ms": float(np.mean([f.timings.get(s, 0.0) for f in stats.frames]) * 1000),
                  "p95_ms": percentile([f.timings.get(s, 0.0) for f in stats.frames], 95)}
              for s in ("capture", "detect", "preprocess", "predict", "draw")}
    answered = sum(f.probabilities is not None for f in stats.frames)
    return {"frames": len(stats.frames), "answered": answered, "fps": stats.fps,
            "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
            "stages": stages}


def as_base_path(path: str, tmp: str) -> str:
    """A TF Serving base path for `path`: itself, or a temporary one whose version 1 links
    to a single SavedModel directory."""
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        return os.path.abspath(path)
    base = tempfile.mkdtemp(dir=tmp)
    os.symlink(os.path.abspath(path), os.path.join(base, "1"))
    return base


def main():
    from models import features

    p = argparse.ArgumentParser()
    p.add_argument("--model", action="append", metavar="NAME=PATH",
                   help=f"a model to serve and measure (repeatable); default shipped={features.SHIPPED_MODEL_BASE_PATH}")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--faces", type=int, nargs="+", default=[1, 4])
    args = p.parse_args()
    from tests.client.video import write_video

    models = [m.split("=", 1) for m in (args.model or [f"shipped={features.SHIPPED_MODEL_BASE_PATH}"])]
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "frames": args.frames,
              "models": dict(models), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        videos = {count: write_video(os.path.join(tmp, f"faces{count}.avi"), [count] * args.frames)
                  for count in args.faces}
        for name, path in models:
            server = ServerProcess(as_base_path(path, tmp))
            try:
                for count, video in videos.items():
                    run_once(server.target, video, False)  # warm: cascade, channel, server graph
                    for pipelined, detect_every in ((False, 1), (True, 1), (False, 2)):
                        result = {"model": name, "faces": count, "pipelined": pipelined, "detect_every": detect_every,
                                  **run_once(server.target, video, pipelined, detect_every)}
                        report["runs"].append(result)
                        print(json.dumps(result), flush=True)
            finally:
                server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
