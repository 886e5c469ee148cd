"""What one local pipeline run leaves in the temporary directory, and what it costs, with
TFX's packaging of itself for the Beam workers (TFX's default, the baseline) and without it
(what `fer-pipeline run` does for workers that run here: pipeline/beam_dependencies.py).

Runs the whole pipeline on generated data in fresh output and temporary directories,
alternating baseline and ours for --rounds rounds, and prints per run the wall seconds, the
bytes and the directories left behind in the temporary directory, and how many TFX packages
were built.

    .venv/bin/python bench/run_tempfiles.py --rows 600 --rounds 2
"""

import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tree_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files
               if not os.path.islink(os.path.join(d, f)))


def one_run(csv, variant, options):
    from tfx.utils import dependency_utils

    from pipeline import beam_dependencies, local_runner

    out, tmp = tempfile.mkdtemp(prefix="bench-run-"), tempfile.mkdtemp(prefix="bench-tmp-")
    built, build = [], dependency_utils.build_ephemeral_package
    saved_tempdir, saved_here = tempfile.tempdir, beam_dependencies.workers_run_here
    tempfile.tempdir = tmp  # everything the run puts in "the" temporary directory lands here
    dependency_utils.build_ephemeral_package = lambda: built.append(1) or build()
    if variant == "baseline":  # TFX's default: package TFX for the workers whatever the runner
        beam_dependencies.workers_run_here = lambda beam_args: False
    try:
        start = time.perf_counter()
        local_runner.run(csv, out, options, stream=io.StringIO())
        seconds = time.perf_counter() - start
    finally:
        tempfile.tempdir = saved_tempdir
        beam_dependencies.workers_run_here = saved_here
        dependency_utils.build_ephemeral_package = build
    left = {"bytes": tree_bytes(tmp), "entries": len(os.listdir(tmp))}
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"variant": variant, "seconds": round(seconds, 1), "tfx_packages_built": len(built),
            "tmp_bytes_left": left["bytes"], "tmp_entries_left": left["entries"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=600)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    from pipeline.options import PipelineOptions
    from tools.demo_data import write_demo_csv

    data_dir = tempfile.mkdtemp(prefix="bench-data-")
    csv = os.path.join(data_dir, "demo.csv.gz")
    with gzip.open(csv, "wt") as stream:
        write_demo_csv(stream, rows=args.rows)
    options = PipelineOptions(accuracy_lower_bound=0.0).replace(model="simple_cnn", epochs=1)
    try:
        for _ in range(args.rounds):
            for variant in ("baseline", "ours"):
                print(json.dumps(one_run(csv, variant, options)), flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
