"""Which DirectRunner mode for the Beam stages (StatisticsGen, Transform) at which size.

Runs the data stages of the pipeline (ExampleGen -> StatisticsGen -> Transform, no
training, no cache) in fresh output directories with in_memory and multi_processing
(workers = cores), alternating, for each --max-rows size, and prints the seconds of
StatisticsGen + Transform. pipeline/local_runner.MULTI_PROCESSING_MIN_ROWS comes from it.

    .venv/bin/python bench/beam_mode_bench.py ../shared/data/fer2013/fer2013.csv.gz --max-rows 1000 10000
"""

import argparse
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODES = {
    "in_memory": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "multi_processing": ["--direct_running_mode=multi_processing", f"--direct_num_workers={os.cpu_count()}"],
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("--max-rows", type=int, nargs="+", required=True)
    args = p.parse_args()
    from pipeline import local_runner
    from pipeline.options import PipelineOptions

    results = []
    for max_rows in args.max_rows:
        for mode, beam_args in MODES.items():
            out = tempfile.mkdtemp(prefix=f"beam-{mode}-")
            options = PipelineOptions(max_rows_per_split=max_rows, beam_args=tuple(beam_args), enable_training=False)
            result = local_runner.run(args.csv, out, options, stream=io.StringIO())
            stages = {k: round(v.seconds, 1) for k, v in result.stages.items()}
            rows = result.stages["FerExampleGen"].headline.split(" rows")[0]
            results.append({"max_rows_per_split": max_rows, "rows_read": rows, "mode": mode,
                            "statistics_plus_transform_s": round(stages["StatisticsGen"] + stages["Transform"], 1),
                            "stages_s": stages})
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
