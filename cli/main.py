"""`fer-pipeline`: the top floor. Subcommands import what they need lazily, so
`check-csv` and `demo-data` never load TensorFlow."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _demo_data(args) -> int:
    from tools import demo_data

    if args.images:
        counts = demo_data.write_demo_tree(args.output, rows=args.rows, seed=args.seed, with_usage=not args.no_usage,
                                           image_format=args.images)
        print(f"wrote {counts['rows']} {args.images} images under {args.output}: {json.dumps(counts)}")
        return 0
    counts = demo_data.write_demo_file(args.output, rows=args.rows, seed=args.seed, with_usage=not args.no_usage)
    print(f"wrote {counts['rows']} rows to {args.output}: {json.dumps(counts)}")
    return 0


def _check_data(args) -> int:
    import csv as csv_module

    from components.fer_image_gen import decoding, folders
    from core import features

    human = sys.stderr if args.json else sys.stdout  # --json: stdout holds the one JSON document
    listed = {"rejects": [], "duplicates": [], "leaks": []}
    out = open(args.rejects, "w", newline="") if args.rejects else None
    writer = csv_module.writer(out, lineterminator="\n") if out else None
    if writer:
        writer.writerow(["file", "reason", "detail"])

    def on_item(item):
        if isinstance(item, folders.Quarantined):
            listed["rejects"].append({"file": item.path, "reason": item.reason, "detail": item.detail})
            if writer:
                writer.writerow([item.path, item.reason, item.detail])
        else:
            listed["duplicates" if item.kind == "duplicate" else "leaks"].append(
                {"file": item.path, "split": item.split, "first_file": item.first_path,
                 "first_split": item.first_split})

    try:
        detector = None
        if args.crop_faces:
            from client import detectors

            detector = detectors.make(args.detector)
        stats = folders.scan(args.path, detector=detector, on_item=on_item)
    except folders.LayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except decoding.WorkerError as e:  # a decoding worker died or failed: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if out:
            out.close()
    report = stats.as_dict()
    exceeded = stats.rows > 0 and stats.reject_fraction > args.max_reject_fraction
    report.update(listed, max_reject_fraction=args.max_reject_fraction, ok=stats.valid > 0 and not exceeded)
    print(f"{args.path} ({stats.layout}): files={stats.rows} valid={stats.valid} rejected={stats.rejected} "
          f"({stats.reject_fraction:.3%}, allowed {args.max_reject_fraction:.3%}) duplicates={stats.duplicates} "
          f"leaks={stats.leaks}", file=human)
    width = max(len(n) for n in features.CLASS_NAMES)
    print("  " + " " * 6 + " ".join(f"{n:>{width}}" for n in features.CLASS_NAMES) + f" {'total':>{width}}",
          file=human)
    for split, counts in report["by_split_emotion"].items():
        if report["by_split"][split]:
            print(f"  {split:<6}" + " ".join(f"{c:>{width}}" for c in counts.values())
                  + f" {report['by_split'][split]:>{width}}", file=human)
    for reason, count in report["by_reason"].items():
        if count:
            print(f"  {reason}: {count}", file=human)
    shown = 10
    for r in listed["rejects"][:shown]:
        print(f"  rejected {r['file']}: {r['reason']}: {r['detail']}", file=human)
    for kind in ("duplicates", "leaks"):
        for d in listed[kind][:shown]:
            print(f"  {kind[:-1]}: {d['file']} ({d['split']}) = {d['first_file']} ({d['first_split']})", file=human)
    for kind in ("rejects", "duplicates", "leaks"):
        if len(listed[kind]) > shown:
            print(f"  ... {len(listed[kind]) - shown} more {kind} (--json lists all)", file=human)
    if args.rejects:
        print(f"  rejects written to {args.rejects}", file=human)
    if stats.valid == 0:
        print(f"error: {args.path}: no readable image", file=sys.stderr)
    if exceeded:
        print(f"error: reject fraction {stats.reject_fraction:.3%} exceeds {args.max_reject_fraction:.3%}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0 if report["ok"] else 1


def _check_csv(args) -> int:
    from components.fer_example_gen import parser

    human = sys.stderr if args.json else sys.stdout  # --json: stdout holds the one JSON document
    try:
        if args.rejects:
            with open(args.rejects, "w", newline="") as out:
                stats = parser.scan(args.path, rejects_out=out)
        else:
            stats = parser.scan(args.path)
    except parser.FerCsvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = stats.as_dict()
    exceeded = stats.rows > 0 and stats.reject_fraction > args.max_reject_fraction
    report["max_reject_fraction"] = args.max_reject_fraction
    report["ok"] = stats.rows > 0 and not exceeded
    if stats.rows == 0:
        print(f"error: {args.path} has a header but no data rows", file=sys.stderr)
        if args.json:
            print(json.dumps(report, sort_keys=True))
        return 1
    print(f"{args.path}: rows={stats.rows} valid={stats.valid} rejected={stats.rejected} "
          f"({stats.reject_fraction:.3%}, allowed {args.max_reject_fraction:.3%})", file=human)
    for reason, count in report["by_reason"].items():
        if count:
            print(f"  {reason}: {count}", file=human)
    print("  splits: " + ", ".join(f"{s}={n}" for s, n in report["by_split"].items()), file=human)
    if args.rejects:
        print(f"  rejects written to {args.rejects}", file=human)
    if exceeded:
        print(f"error: reject fraction {stats.reject_fraction:.3%} exceeds {args.max_reject_fraction:.3%}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0 if report["ok"] else 1


def _run(args) -> int:
    import os

    from core import quiet
    from pipeline import local_runner, options

    if args.warm_start:  # a warm start that is no SavedModel: its one line, before anything starts
        from models import warm_start

        try:
            warm_start.resolve(args.warm_start)
        except warm_start.WarmStartError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    run_options = options.from_args(args)
    problem = options.distillation_problem(run_options)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.teacher:  # likewise each of the teacher's SavedModels
        from models import warm_start

        try:
            local_runner.pin_teacher(args.teacher)
        except warm_start.WarmStartError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    with quiet.import_warnings_ignored():  # Beam's import: google packages' FutureWarnings
        problem = options.beam_args_problem(run_options)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if os.path.isdir(args.data):  # a folder that is no data set: its one line, before anything starts
        from components.fer_image_gen import folders

        try:
            folders.discover(args.data)
        except folders.LayoutError as e:
            print(f"error: --data {e}", file=sys.stderr)
            return 2

    log_path = local_runner.new_log_path(args.output)
    # TensorFlow's and Beam's own lines go to the run's log; the stage lines and the components'
    # lines, printed from different threads, stay whole.
    with quiet.native_output_to(log_path), quiet.whole_lines_on_stdout():
        try:
            local_runner.run(args.data, args.output, run_options, stream=sys.stdout, log_path=log_path)
        except Exception as e:  # the traceback is in the run's log file; the reason goes to the console
            print(f"error: the pipeline run failed: {type(e).__name__}: {e} (details: {log_path})", file=sys.stderr)
            return 1
    # A model that is not blessed is a normal outcome, not an error.
    return 0


def _kubeflow_compile(args) -> int:
    from kubeflow import config
    from pipeline import options as pipeline_options

    pipeline = pipeline_options.from_args(args)
    # the Teacher task, or every Beam task, would fail in the cluster: say it now
    problem = pipeline_options.distillation_problem(pipeline) or pipeline_options.beam_args_problem(pipeline)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    # The defaults let a compile run anywhere; a cluster needs its own of both.
    if args.image is None:
        args.image = config.DEFAULT_IMAGE
        print(f"warning: no --image: tasks run in {config.DEFAULT_IMAGE}, which no cluster can pull; build the "
              "Dockerfile, push it and pass --image REGISTRY/fer-pipeline:TAG", file=sys.stderr)
    if args.pipeline_root is None:
        args.pipeline_root = config.DEFAULT_PIPELINE_ROOT
        print(f"warning: no --pipeline-root: artifacts go to {config.DEFAULT_PIPELINE_ROOT}, a bucket you do not "
              "own; pass --pipeline-root gs://YOUR_BUCKET/fer or a path every pod mounts", file=sys.stderr)
    from kubeflow import runner

    options = runner.CompileOptions(
        pipeline=pipeline, image=args.image, pipeline_root=args.pipeline_root,
        data_root=args.data_root, serving_model_dir=args.serving_model_dir,
        enable_infra_validation=not args.no_infra_validation, serving_tag=args.serving_tag)
    job = runner.compile_pipeline(args.output, options)
    spec = job["pipelineSpec"]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    print(f"wrote {args.output}: {len(spec['root']['dag']['tasks'])} tasks, image {options.image}, "
          f"pipeline root {job['runtimeConfig']['gcsOutputDirectory']}")
    print("  runtime parameters: " + ", ".join(f"{n}={p['defaultValue']}" for n, p in sorted(parameters.items())))
    return 0


def _kubeflow_submit(args) -> int:
    from kubeflow import submit

    try:
        job = submit.load_compiled(args.pipeline)
        parameters = submit.parse_parameters(args.param or [], job)
        caching = False if args.no_cache else None
        if args.vertex:
            if not (args.project and args.region):
                print("error: --vertex needs --project and --region", file=sys.stderr)
                return 2
            name = submit.submit_vertex(
                args.pipeline, project=args.project, region=args.region, run_name=args.run_name,
                parameters=parameters, pipeline_root_override=args.pipeline_root, enable_caching=caching,
                service_account=args.service_account)
            print(f"submitted to Vertex AI Pipelines: {name}")
        else:
            if not args.host:
                print("error: give --host URL (Kubeflow Pipelines) or --vertex", file=sys.stderr)
                return 2
            run_id = submit.submit_kfp(
                job, args.host, experiment=args.experiment, run_name=args.run_name, parameters=parameters,
                pipeline_root_override=args.pipeline_root, namespace=args.namespace,
                service_account=args.service_account, enable_caching=caching, existing_token=args.token)
            print(f"submitted to {args.host}: run {run_id}")
    except submit.SubmitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # credentials, network: the reason, not a traceback
        print(f"error: submission failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _dashboard(args) -> int:
    from dashboard import data, render

    try:
        report = data.load_report(args.run, baseline=args.baseline == "latest-blessed")
    except data.DashboardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    render.write(report, args.output)
    overall = report.slice()
    state = {True: "blessed", False: "NOT blessed", None: "blessing unknown"}[report.blessed]
    print(f"wrote {args.output}: {len(report.slices)} slices, {overall.count()} eval examples, "
          f"accuracy {overall.get(data.ACCURACY):.4f}, {state}"
          + (", compared with the latest blessed model" if report.has_baseline else ""))
    return 0


def _serve(args) -> int:
    from core import features
    from serving import config_files, options, server

    try:
        server.serve_forever(options.from_args(args, features.SHIPPED_MODEL_BASE_PATH))
    except (config_files.ConfigError, options.OptionsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _predict_files(paths: List[str]):
    """(image files to read, count of entries skipped): a folder's images (sorted), its other
    files and subfolders skipped and counted; a path that does not exist skipped, said before
    anything loads (TensorFlow takes seconds)."""
    import os

    from client.webcam import IMAGE_EXTENSIONS

    files, skipped = [], 0
    for path in paths:
        if os.path.isdir(path):
            entries = sorted(os.listdir(path))
            found = [os.path.join(path, f) for f in entries
                     if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f))]
            images = set(found)
            others = [f for f in entries if os.path.join(path, f) not in images]
            if not found:
                print(f"warning: {path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder", file=sys.stderr)
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                print(f"warning: {path}: {len(others)} entr{'y' if len(others) == 1 else 'ies'} not an image file "
                      f"(subfolders are not looked in): {shown}; skipped", file=sys.stderr)
            files += found
            skipped += len(others)
        elif not os.path.exists(path):
            print(f"warning: {path}: no such file; skipped", file=sys.stderr)
            skipped += 1
        else:
            files.append(path)
    return files, skipped


def _predict(args) -> int:
    from client import analyze as fer

    files, skipped = _predict_files(args.paths)
    if not files:
        print("error: no image could be read", file=sys.stderr)
        return 1
    try:
        analyzer = fer.Analyzer(model=args.model, server=args.server, detector=args.detector)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    read = faces = 0
    try:
        for path in files:
            try:
                found = analyzer(path)
            except fer.ImageError as e:
                print(f"warning: {e}; skipped", file=sys.stderr)
                skipped += 1
                continue
            except fer.PredictorError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            read += 1
            faces += len(found)
            if not found:  # a line of its own: "no face" is not "not processed"
                print(json.dumps({"file": path, "face": None}) if args.json else f"{path}: no face found",
                      flush=True)
            for i, face in enumerate(found):  # the Analyzer's order: left to right
                if args.json:
                    print(json.dumps({"file": path, "face": i, **face}), flush=True)
                else:
                    x, y, w, h = face["box"]
                    ranked = sorted(face["emotions"].items(), key=lambda kv: -kv[1])[:2]
                    print(f"{path}: face {i} at x={x} y={y} w={w} h={h}: "
                          + ", ".join(f"{name} {p:.2f}" for name, p in ranked), flush=True)
    finally:
        analyzer.close()
    print(f"{read} of {len(files)} file(s) read, {faces} face(s)" + (f", {skipped} skipped" if skipped else ""),
          file=sys.stderr)
    if not read:
        print("error: no image could be read", file=sys.stderr)
        return 1
    return 0


def _evaluate(args) -> int:
    from components.fer_example_gen.parser import FerCsvError
    from core import names
    from tools import evaluate

    try:
        result = evaluate.evaluate(args.model, args.data, args.usage, args.batch_size)
    except (FerCsvError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    human = sys.stderr if args.json else sys.stdout  # --json: stdout holds the one JSON document
    print(f"{args.model} on {result['examples']} {args.usage} rows of {args.data}"
          + (f" ({result['rows_rejected']} rows of the file rejected by the parser)" if result["rows_rejected"] else ""),
          file=human)
    print(f"  accuracy {result['accuracy']:.4f}, top-2 accuracy {result[names.TOP2_ACCURACY]:.4f}, "
          f"macro-F1 {result[names.MACRO_F1]:.4f}", file=human)
    for name, row in result["per_class"].items():
        fmt = lambda v: "   -  " if v is None else f"{v:.4f}"  # noqa: E731
        print(f"  {name:<9} support {row['support']:>5}  recall {fmt(row['recall'])}  precision {fmt(row['precision'])}",
              file=human)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _compiled_output(path: str) -> str:
    from core import arg_types

    if not path.endswith((".yaml", ".yml", ".json")):
        raise argparse.ArgumentTypeError(f"{path}: end the name in .yaml (Kubeflow Pipelines) or .json (Vertex AI)")
    return arg_types.file_to_create(path)


def _add_kubeflow(sub) -> None:
    from components.fer_infra_validator import defaults as infra_defaults
    from kubeflow import config  # no TensorFlow
    from core import arg_types
    from pipeline import options as pipeline_options

    k = sub.add_parser("kubeflow", help="compile for / submit to Kubeflow Pipelines v2 or Vertex AI Pipelines")
    ksub = k.add_subparsers(dest="kubeflow_command", required=True)
    c = ksub.add_parser("compile", help="compile create_pipeline() with KubeflowV2DagRunner: a PipelineSpec YAML for "
                                        "Kubeflow Pipelines or a PipelineJob JSON for Vertex AI")
    c.add_argument("--output", required=True, type=_compiled_output,
                   help="pipeline.yaml: the PipelineSpec the kfp SDK, CLI and UI load; pipeline.json: the Vertex AI "
                        "PipelineJob")
    c.add_argument("--image", default=None,
                   help=f"pipeline image every task runs in (see Dockerfile) (default: {config.DEFAULT_IMAGE}, with a "
                        "warning: no cluster can pull it)")
    c.add_argument("--pipeline-root", default=None,
                   help=f"artifact root (gs:// or a path every pod mounts) (default: {config.DEFAULT_PIPELINE_ROOT}, "
                        "with a warning)")
    c.add_argument("--data-root", default=config.DEFAULT_DATA_ROOT, help="default of the data_root runtime parameter")
    c.add_argument("--serving-model-dir", help="Pusher destination (default: serving_model/fer beside the pipeline root)")
    pipeline_options.add_arguments(c, pipeline_options.KUBEFLOW, notes={
        "beam_args": " (default: " + " ".join(config.DEFAULT_BEAM_ARGS) + ")",
        "warm_start": ". On Kubeflow PATH is `shipped` (the model in the image) or a URI the cluster reads (a "
                      "SavedModel, a pushed model's base path, or a Model artifact such as an earlier run's "
                      "FerTrainer model), resolved by the WarmStart task; it is the default of the "
                      f"{config.WARM_START_PARAMETER} runtime parameter, and the cache keys on it as given: after "
                      "pushing a newer version under a base path, submit with --no-cache or name the version",
        "teacher": f". On Kubeflow each PATH is as --warm-start's, resolved by the Teacher task; the list is the "
                   f"default of the {config.TEACHER_PARAMETER} runtime parameter"})
    c.add_argument("--no-infra-validation", action="store_true",
                   help="leave out InfraValidator (needed for Vertex AI, which has no Kubernetes API)")
    c.add_argument("--serving-tag", default=infra_defaults.DEFAULT_SERVING_TAG,
                   help="tensorflow/serving image tag InfraValidator starts (TensorFlow's version) (default: %(default)s)")
    c.set_defaults(func=_kubeflow_compile)

    s = ksub.add_parser("submit", help="create a run of a compiled pipeline")
    s.add_argument("--pipeline", default="pipeline.yaml", type=arg_types.input_file,
                   help="compiled pipeline: a PipelineSpec .yaml or a PipelineJob .json (default: %(default)s)")
    s.add_argument("--host", help="Kubeflow Pipelines API endpoint, e.g. http://localhost:8080")
    s.add_argument("--vertex", action="store_true", help="submit to Vertex AI Pipelines instead")
    s.add_argument("--project", help="Vertex: Google Cloud project")
    s.add_argument("--region", help="Vertex: region, e.g. europe-west4")
    s.add_argument("--experiment", default=config.DEFAULT_EXPERIMENT,
                   help="KFP experiment (created if missing) (default: %(default)s)")
    s.add_argument("--run-name")
    s.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="runtime parameter (repeatable): " + ", ".join(
                       [config.DATA_ROOT_PARAMETER, *pipeline_options.runtime_parameter_fields()]) + ", and "
                        f"{config.WARM_START_PARAMETER} in a pipeline compiled with --warm-start, "
                        f"{config.TEACHER_PARAMETER} in one compiled with --teacher")
    s.add_argument("--pipeline-root", help="override the compiled pipeline root for this run")
    s.add_argument("--namespace", help="KFP: namespace (multi-user deployments)")
    s.add_argument("--service-account")
    s.add_argument("--token", help="KFP: bearer token (else the client's usual auth)")
    s.add_argument("--no-cache", action="store_true", help="run every task, ignoring cached results")
    s.set_defaults(func=_kubeflow_submit)


def build_parser() -> argparse.ArgumentParser:
    from client import detectors  # OpenCV, no TensorFlow
    from components.fer_example_gen.parser import DEFAULT_MAX_REJECT_FRACTION
    from core import arg_types
    from pipeline import beam_worker_pool, options  # no TensorFlow: keeps `--help` and check-csv light
    from serving import options as serving_options

    p = arg_types.Parser(prog="fer-pipeline", description="FER-2013 TFX pipeline")
    p.add_argument("--version", action="version", version=f"%(prog)s {arg_types.version()}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo-data", help="write a synthetic FER-format CSV (procedurally drawn faces)")
    d.add_argument("--output", required=True, type=arg_types.file_to_create,
                   help="CSV path (.gz compresses; missing folders are made); with --images a new folder")
    d.add_argument("--rows", type=arg_types.positive_int, required=True, help="rows to write")
    d.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    d.add_argument("--no-usage", action="store_true", help="omit the Usage column (--images: no split folders)")
    d.add_argument("--images", choices=["png", "jpg", "bmp", "webp"],
                   help="write the faces as image files OUTPUT/<split>/<emotion>/<row>.<format> instead of a CSV")
    d.set_defaults(func=_demo_data)

    c = sub.add_parser("check-csv", help="validate a FER CSV with the ExampleGen's parser")
    c.add_argument("path", type=arg_types.input_file, help="FER CSV (plain or .gz)")
    c.add_argument("--rejects", type=arg_types.output_file, help="write rejected rows (line,reason,detail) to this CSV")
    c.add_argument("--max-reject-fraction", type=arg_types.fraction, default=DEFAULT_MAX_REJECT_FRACTION,
                   help="fail when more of the rows than this are rejected (default: %(default)s)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON document on stdout "
                                                       "(the text goes to stderr)")
    c.set_defaults(func=_check_csv)

    k = sub.add_parser("check-data", help="validate a folder of face images as FerImageGen reads it: counts per "
                                          "split and emotion, rejects, duplicates, train/test leaks")
    k.add_argument("path", type=arg_types.input_folder, help="DIR/<split>/<emotion>/* or DIR/<emotion>/*")
    k.add_argument("--rejects", type=arg_types.output_file, help="write the rejected files (file,reason,detail) to "
                                                               "this CSV")
    k.add_argument("--max-reject-fraction", type=arg_types.fraction, default=DEFAULT_MAX_REJECT_FRACTION,
                   help="fail when more of the files than this are rejected (default: %(default)s)")
    k.add_argument("--crop-faces", action="store_true", help="run the face detector first, as the pipeline's "
                                                             "--crop-faces does")
    k.add_argument("--detector", choices=detectors.DETECTOR_NAMES, default="haar",
                   help="face detector of --crop-faces (default: %(default)s)")
    k.add_argument("--json", action="store_true", help="print the report as one JSON document on stdout "
                                                       "(the text goes to stderr)")
    k.set_defaults(func=_check_data)

    r = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner + Beam DirectRunner)")
    r.add_argument("--data", required=True, type=arg_types.input_path,
                   help="FER CSV (plain or .gz), or a folder of images: DIR/<split>/<emotion>/* or DIR/<emotion>/*")
    r.add_argument("--output", required=True, help="run directory (MLMD, artifacts, serving_model/)")
    options.add_arguments(r, options.LOCAL, notes={
        "beam_args": " (default: the DirectRunner, in_memory or multi_processing by the data's size)"})
    r.set_defaults(func=_run)

    b = sub.add_parser("dashboard", help="a self-contained HTML page of a run's TFMA evaluation")
    b.add_argument("--run", required=True, help="run directory (fer-pipeline run --output)")
    b.add_argument("--output", required=True, type=arg_types.output_file, help="HTML file to write")
    b.add_argument("--baseline", choices=["latest-blessed", "none"], default="latest-blessed",
                   help="show the Evaluator's baseline (the latest blessed model) beside the candidate "
                        "(default: %(default)s)")
    b.set_defaults(func=_dashboard)

    e = sub.add_parser("evaluate", help="evaluate a pushed SavedModel (serving_default) on a FER CSV")
    e.add_argument("--model", required=True, help="a pushed version directory: .../serving_model/fer/<version>")
    e.add_argument("--data", required=True, type=arg_types.input_file, help="FER CSV (plain or .gz)")
    e.add_argument("--usage", default="PublicTest", choices=["Training", "PublicTest", "PrivateTest", "valid"],
                   help="the rows of one Usage, or 'valid': the validation carve of Training (seed 42, 10 %%) that "
                        "selects models (default: %(default)s)")
    e.add_argument("--batch-size", type=arg_types.positive_int, default=256,
                   help="faces a model call (default: %(default)s)")
    e.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout (the text "
                                                       "goes to stderr)")
    e.set_defaults(func=_evaluate)

    q = sub.add_parser("predict", help="emotions of the faces in images or folders of images (shipped model "
                                       "unless --model or --server)")
    q.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    q.add_argument("--model", help="a SavedModel or TF Serving model base path (default: the shipped model, "
                                   "models/pretrained/)")
    q.add_argument("--server", help="predict through a TF Serving gRPC endpoint instead, e.g. 127.0.0.1:8500")
    q.add_argument("--detector", choices=detectors.DETECTOR_NAMES, default=detectors.DEFAULT_DETECTOR,
                   help="face detector (default: %(default)s: the most faces found, bench/results/detectors.md)")
    q.add_argument("--json", action="store_true", help="one JSON object per face per line: file, face (numbered "
                                                     "from 0, left to right), box ([x, y, w, h] in pixels), "
                                                     "emotions, dominant_emotion, confidence; a file with no face: "
                                                     "{\"file\": ..., \"face\": null}")
    q.set_defaults(func=_predict)

    v = sub.add_parser("serve", help="serve a pushed model over TF Serving's gRPC and REST API (development; "
                                     "production runs TF Serving, see serving/)")
    serving_options.add_arguments(v, "the shipped model, models/pretrained/")
    v.set_defaults(func=_serve)

    w = sub.add_parser("beam-workers", help="a Beam SDK worker pool for the portable runner (EXTERNAL "
                                            "environment), started from this environment")
    beam_worker_pool.add_arguments(w)
    w.set_defaults(func=beam_worker_pool.run_from_args)

    _add_kubeflow(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is _run:  # a run keeps TensorFlow's lines, in its log file
        return args.func(args)
    from core import quiet

    quiet.quiet_imports()
    quiet.quiet_libraries()
    if args.func is _predict:  # images and detectors: libpng's and TFLite's lines
        with quiet.native_noise_filtered():
            return args.func(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
