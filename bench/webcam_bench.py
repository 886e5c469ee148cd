"""The webcam pipeline on a 640x480 video, server on the same machine (its own process):
frames/s and per-frame latency (p50/p95, capture start to overlay drawn), split into
capture, detect, preprocess, predict, draw; with 1 and with 4 faces; sequential (the
default), pipelined (the Predict of frame t overlaps detection of frame t+1), and with the
detector on every other frame.

Goal: >= 60 frames/s and p95 <= 25 ms with one face, on this 2-core machine.

    .venv/bin/python bench/webcam_bench.py --model-base-path runs/demo/serving_model/fer
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

    frames, _ = webcam.open_source(video)
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-base-path", default="runs/demo/serving_model/fer")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--faces", type=int, nargs="+", default=[1, 4])
    args = p.parse_args()
    from tests.client.video import write_video

    server = ServerProcess(os.path.abspath(args.model_base_path))
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "frames": args.frames, "runs": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for count in args.faces:
                video = write_video(os.path.join(tmp, f"faces{count}.avi"), [count] * args.frames)
                run_once(server.target, video, False)  # warm: cascade, channel, server graph
                for pipelined, detect_every in ((False, 1), (True, 1), (False, 2)):
                    result = {"faces": count, "pipelined": pipelined, "detect_every": detect_every,
                              **run_once(server.target, video, pipelined, detect_every)}
                    report["runs"].append(result)
                    print(json.dumps(result), flush=True)
    finally:
        server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
