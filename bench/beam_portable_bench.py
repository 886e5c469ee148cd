"""The Beam stages (StatisticsGen + Transform) through Beam's portability layer against the
DirectRunner, on the same data in the same session.

Configurations, each in a fresh output directory (no cache), data stages only:
  direct_in_memory       the default at this size (pipeline/local_runner.py)
  direct_multi_processing DirectRunner, --direct_num_workers=N subprocess workers
  portable_external      PortableRunner, embedded job service, EXTERNAL environment,
                         an N-process SDK worker pool (pipeline/beam_worker_pool.py)

Besides the stages' wall time it records where the time goes: the coordinator's CPU
seconds, the workers' CPU seconds (the pool's log; RUSAGE_CHILDREN for the DirectRunner's
subprocess workers), how long each SDK worker took to connect (the run's log), and what a
fresh worker spends importing TFDV, TFT and TFMA.

    .venv/bin/python bench/beam_portable_bench.py ../shared/data/fer2013/fer2013.csv.gz --workers 2
"""

import argparse
import glob
import io
import json
import os
import re
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_EXITED = re.compile(r"exited (-?\d+) after ([\d.]+) s, cpu ([\d.]+) s")
_CONNECTED = re.compile(r"pipeline.beam_portable: Beam SDK worker \S+ connected ([\d.]+) s after")


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_once(csv, name, beam_args, pool=None, max_rows=None):
    from pipeline import local_runner
    from pipeline.options import PipelineOptions

    out = tempfile.mkdtemp(prefix=f"beam-{name}-")
    self_cpu, children_cpu, started = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.time()
    options = PipelineOptions(beam_args=tuple(beam_args), enable_training=False, max_rows_per_split=max_rows)
    result = local_runner.run(csv, out, options, stream=io.StringIO())
    wall = time.time() - started
    stages = {k: round(v.seconds, 1) for k, v in result.stages.items()}
    record = {
        "config": name,
        "beam_args": " ".join(beam_args),
        "rows": result.stages["FerExampleGen"].headline.split(" rows")[0],
        "statistics_plus_transform_s": round(stages["StatisticsGen"] + stages["Transform"], 1),
        "stages_s": stages,
        "run_wall_s": round(wall, 1),
        "coordinator_cpu_s": round(_cpu(resource.RUSAGE_SELF) - self_cpu, 1),
        "subprocess_worker_cpu_s": round(_cpu(resource.RUSAGE_CHILDREN) - children_cpu, 1),
    }
    if pool is not None:
        time.sleep(5)  # the last job's workers exit once their control stream closes
        exits = _EXITED.findall(pool.log())
        record["pool_workers_started"] = pool.log().count(" started: pid ")
        record["pool_worker_cpu_s"] = round(sum(float(cpu) for _, _, cpu in exits), 1)
        logs = "".join(open(p).read() for p in glob.glob(os.path.join(out, "logs", "*.log")))
        connects = [float(s) for s in _CONNECTED.findall(logs)]
        record["worker_connect_s"] = {"count": len(connects), "mean": round(sum(connects) / max(1, len(connects)), 2),
                                      "max": max(connects, default=0.0)}
    return record


def worker_import_cost():
    """CPU and wall seconds a fresh worker interpreter spends importing what the Beam stages'
    functions need before its first element (each SDK worker pays this once per job)."""
    import subprocess

    code = "import tensorflow_data_validation, tensorflow_transform.beam, tensorflow_model_analysis"
    before, started = _cpu(resource.RUSAGE_CHILDREN), time.time()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return {"config": "worker_imports", "cpu_s": round(_cpu(resource.RUSAGE_CHILDREN) - before, 1),
            "wall_s": round(time.time() - started, 1)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--max-rows", type=int, help="at most N rows of each split (default: all)")
    args = p.parse_args()
    from pipeline.beam_worker_pool import LocalWorkerPool

    n = args.workers
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "workers": n}), flush=True)
    print(json.dumps(run_once(args.csv, "direct_in_memory", ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
                              max_rows=args.max_rows)), flush=True)
    print(json.dumps(run_once(args.csv, "direct_multi_processing",
                              ["--direct_running_mode=multi_processing", f"--direct_num_workers={n}"],
                              max_rows=args.max_rows)), flush=True)
    print(json.dumps(worker_import_cost()), flush=True)
    with LocalWorkerPool(n) as pool:
        print(json.dumps(run_once(args.csv, "portable_external", pool.beam_args, pool=pool,
                                  max_rows=args.max_rows)), flush=True)


if __name__ == "__main__":
    main()
