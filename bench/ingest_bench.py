"""Ingest benchmark: the ExampleGen's rows/s against a plain numpy parse of the same file.

Both read the same gzip CSV start to end in this process, one after the other, several
rounds, best round kept (the machine is shared). The plain parse is the floor: gzip +
csv + np.fromstring per row, no validation, nothing written. The ExampleGen side is the
component's executor core (components/fer_example_gen/component.write_examples): parse,
validate, encode tf.Examples, write gzip TFRecords per split and the rejects file.

    .venv/bin/python bench/ingest_bench.py ../shared/data/fer2013/fer2013.csv.gz [--rounds 3]
Goal: ExampleGen time <= 2x the numpy time.
"""

import argparse
import csv
import gzip
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def numpy_parse(path):
    rows = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with io.TextIOWrapper(gzip.open(path, "rb"), newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for record in reader:
                np.fromstring(record[1], dtype=np.uint8, sep=" ")
                int(record[0])
                rows += 1
    return rows


def example_gen(path):
    from components.fer_example_gen.component import write_examples
    from core import names

    out = tempfile.mkdtemp()
    try:
        stats, _ = write_examples([path], lambda s: os.path.join(out, f"Split-{s}"), os.path.join(out, names.REJECTS_FILE))
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
        return stats.rows, stats, size
    finally:
        shutil.rmtree(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    import tensorflow  # noqa: F401 - import cost is not part of either timing

    best = {"numpy": float("inf"), "example_gen": float("inf")}
    for _ in range(args.rounds):
        t = time.perf_counter()
        rows_np = numpy_parse(args.csv)
        best["numpy"] = min(best["numpy"], time.perf_counter() - t)
        t = time.perf_counter()
        rows_eg, stats, size = example_gen(args.csv)
        best["example_gen"] = min(best["example_gen"], time.perf_counter() - t)
    assert rows_np == rows_eg, (rows_np, rows_eg)
    result = {
        "rows": rows_np,
        "numpy_seconds": round(best["numpy"], 2),
        "numpy_rows_per_s": round(rows_np / best["numpy"]),
        "example_gen_seconds": round(best["example_gen"], 2),
        "example_gen_rows_per_s": round(rows_eg / best["example_gen"]),
        "ratio_example_gen_over_numpy": round(best["example_gen"] / best["numpy"], 2),
        "goal_ratio_at_most": 2.0,
        "written": stats.valid,
        "rejected": stats.rejected,
        "tfrecord_bytes": size,
        "rounds": args.rounds,
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
