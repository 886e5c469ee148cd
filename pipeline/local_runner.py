"""Runs create_pipeline() with TFX's LocalDagRunner on Beam's DirectRunner.

Prints one line when each stage starts and one when it finishes, with its headline result
(pipeline/console.py), and returns those results. MLMD lives in OUTPUT/metadata.sqlite,
artifacts under OUTPUT/pipeline_root, pushed models under OUTPUT/serving_model/fer/<version>.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import time
from typing import Dict, List, Optional

from models import catalog
from pipeline import beam_dependencies, beam_portable, configs
from pipeline.console import StageReporter, StageResult
from pipeline.options import CSV_INPUT, IMAGES_INPUT, PipelineOptions

# Below this many rows the DirectRunner runs in_memory. Measured on 2 cores, in_memory beat
# multi_processing for StatisticsGen + Transform both on 2,000 rows (31 s vs 46 s) and on
# the whole of FER-2013, 32,298 rows (91 s vs 112 s): worker start-up and pickling 9 KB
# examples across processes cost more than a second core saves (bench/results/beam_mode.md).
# Larger inputs go to multi_processing over all cores; --beam-arg overrides either way.
MULTI_PROCESSING_MIN_ROWS = 100_000
_BYTES_PER_CSV_ROW = 8200  # ~2,304 pixel tokens of 1-3 digits + separators


def estimate_rows(csv_path: str, max_rows_per_split: Optional[int] = None) -> int:
    size = os.path.getsize(csv_path)
    if csv_path.endswith(".gz"):
        size *= 2.3  # FER pixel text compresses about 2.3x
    rows = int(size / _BYTES_PER_CSV_ROW)
    if max_rows_per_split:
        rows = min(rows, 3 * max_rows_per_split)
    return rows


def estimate_images(folder: str, max_rows_per_split: Optional[int] = None) -> int:
    """The files under a data folder (listed, not read); raises LayoutError for a tree that is
    no data set (components/fer_image_gen/folders.py)."""
    from components.fer_image_gen import folders

    files = sum(1 for _ in folders.folder_files(folder))
    return min(files, 3 * max_rows_per_split) if max_rows_per_split else files


def pin_warm_start(path_or_name: str) -> str:
    """The SavedModel folder --warm-start names on this machine (a base path's newest version),
    for WarmStart's `source`: TFX's cache keys on that string, so a newer version pushed since
    the last run is a new key (WarmStart copies it again and the Trainer fine-tunes from it),
    and an unchanged one reuses the cached copy and training. Raises WarmStartError for a path
    that is none."""
    from models import warm_start

    return warm_start.resolve(path_or_name)


def pin_teacher(sources: str) -> str:
    """--teacher with each SavedModel pinned as pin_warm_start pins one (comma-separated, in
    order): a newer version pushed under a base path is a new cache key."""
    from components.teacher import logic
    from models import warm_start

    return ",".join(warm_start.resolve(source, flag=logic.FLAG) for source in logic.split_sources(sources))


def default_beam_args(estimated_rows: int) -> List[str]:
    """DirectRunner options sized to the data: multi_processing over all cores for large
    inputs, in_memory for small ones."""
    if estimated_rows >= MULTI_PROCESSING_MIN_ROWS:
        return ["--direct_running_mode=multi_processing", f"--direct_num_workers={os.cpu_count() or 1}"]
    return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


@dataclasses.dataclass
class RunResult:
    output_dir: str
    stages: Dict[str, StageResult]
    blessed: bool
    pushed_path: Optional[str]


# Warnings every run prints that say nothing about this run; they stay in the log file.
_KNOWN_NOISE = re.compile(
    r"ArtifactQuery\.property_predicate is not supported"  # TFX resolver internals
    r"|does not have payload_format custom property"  # Transform's output; TF Example is right
    r"|parse_example_dataset \(from tensorflow"  # deprecation inside tfx_bsl
    r"|^Execution \d+ failed\.$"  # TFX's line before the failure the CLI reports in its own words
    r"|Fail to find plots for model name"  # TFMA, once a slice, when no plots are configured
    r"|Couldn't find python-snappy"  # Beam: a slower CRC, not a fault
    r"|tf_record_iterator \(from tensorflow"  # deprecation inside TFMA's writer
)


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _KNOWN_NOISE.search(record.getMessage())


class _WithoutTraceback(logging.Formatter):
    """The console's format: a record's message without its traceback (the log file has it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _console_handlers():
    """The handlers that write to the console: the root's, and those libraries attach to their
    own loggers (TensorFlow's writes INFO lines to the console by itself)."""
    consoles = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    return [h for logger in _loggers() for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            and id(h.stream) in consoles]


def new_log_path(output_dir: str) -> str:
    """OUTPUT/logs/run-<time>.log (TF-free: the CLI sends native output there before TF loads)."""
    return os.path.join(os.path.abspath(output_dir), "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))


class _LoggingState:
    """What a run changes in logging, as it was: the level, handlers, filters and propagation of the
    root and of every logger made so far, and the level, filters and formatter of their
    handlers. restore() puts them back; handlers added since (the log file's, the console's that
    basicConfig made, a library's) come off the loggers that were there. Loggers made since are
    the libraries' own and stay as they are."""

    def __init__(self):
        logging.getLogger("absl")  # _log_to_file sets its level even when no one has made it yet
        self.loggers = {logger: (logger.level, list(logger.handlers), list(logger.filters), logger.propagate)
                        for logger in _loggers()}
        self.handlers = {handler: (handler.level, list(handler.filters), handler.formatter)
                         for _, handlers, _, _ in self.loggers.values() for handler in handlers}

    def remember(self, handler: logging.Handler) -> None:
        """A handler about to be changed that was not there at the start (a library's, made by an
        import during the run): restore() puts its level, filters and formatter back too."""
        self.handlers.setdefault(handler, (handler.level, list(handler.filters), handler.formatter))

    def restore(self) -> None:
        for logger, (level, handlers, filters, propagate) in self.loggers.items():
            logger.setLevel(level)
            logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate
        for handler, (level, filters, formatter) in self.handlers.items():
            handler.setLevel(level)
            handler.filters[:] = filters
            handler.setFormatter(formatter)


def _loggers() -> List[logging.Logger]:
    """The root and every logger made so far."""
    return [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                    if isinstance(logger, logging.Logger)]


@contextlib.contextmanager
def _logging_left_as_found():
    """Logging after the `with` block is as it was before it, also when the block raises."""
    before = _LoggingState()
    try:
        yield before
    finally:
        before.restore()


def _log_to_file(path: str, state: Optional[_LoggingState] = None) -> logging.FileHandler:
    """Everything at INFO goes to the run's log file; the console keeps warnings (less the
    known noise). Changes logging for the whole process: run() undoes it (_logging_left_as_found,
    whose `state` remembers each console handler changed here)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        # The console handler, made here so that it gets the filter below: a library's own
        # basicConfig() during the run is then a no-op instead of a second, unfiltered console.
        logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
    for console in _console_handlers():
        if state is not None:
            state.remember(console)
        console.setLevel(max(console.level, logging.WARNING))
        console.addFilter(_DropKnownNoise())
        console.setFormatter(_WithoutTraceback(console.formatter._fmt if console.formatter else None))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.INFO)
    return handler


def build(data: str, output_dir: str, options: PipelineOptions, stream=None):
    """(the pipeline `options` describe on `data`, its Beam arguments), for LocalDagRunner."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    catalog.entry(options.training.model)  # an unknown or unservable model fails here, before any stage runs
    data = os.path.abspath(data)
    images = os.path.isdir(data)
    if images:  # a folder of images: FerImageGen; its layout is checked here, before any stage runs
        options = options.replace(input_format=IMAGES_INPUT)
        estimated = estimate_images(data, options.max_rows_per_split)
    elif not os.path.isfile(data):
        raise FileNotFoundError(f"--data {data}: no such file or folder")
    else:
        options = options.replace(input_format=CSV_INPUT)
        estimated = estimate_rows(data, options.max_rows_per_split)
    beam_args = list(options.beam_args) if options.beam_args else default_beam_args(estimated)
    if stream is not None:
        what = f"{estimated} image files" if images else f"~{estimated} rows"
        print(f"FER pipeline: data {data} ({what}), output {output_dir}", file=stream)
        print(f"Beam: {' '.join(beam_args)}", file=stream, flush=True)
    if options.warm_start:
        options = options.replace(warm_start=pin_warm_start(options.warm_start))
        if stream is not None:
            print(f"Warm start: {options.warm_start}", file=stream, flush=True)
    if options.teacher:
        options = options.replace(teacher=pin_teacher(options.teacher))
        if stream is not None:
            print(f"Teacher: {options.teacher}", file=stream, flush=True)
    if options.training.checkpoint_dir is None:
        options = options.replace(checkpoint_dir=configs.checkpoint_dir(output_dir, options.training.model))
    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=configs.pipeline_root(output_dir),
        data_root=data if images else os.path.dirname(data),
        data_file_pattern="" if images else os.path.basename(data),
        serving_model_dir=configs.serving_model_dir(output_dir),
        options=options,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            configs.metadata_path(output_dir)
        ),
        beam_pipeline_args=beam_args,
    )
    return pipeline, beam_args


def run(data: str, output_dir: str, options: PipelineOptions = PipelineOptions(), *, stream=sys.stdout,
        log_path: Optional[str] = None) -> RunResult:
    """Runs the pipeline `options` describe on `data` (a FER CSV or a folder of images), artifacts under `output_dir`,
    its log in `log_path` (default: a new OUTPUT/logs/run-<time>.log). Logging is as it was when it returns
    or raises."""
    # From the start: the imports build() makes configure logging too (TFMA's logs before any
    # handler exists, and absl then calls basicConfig).
    with _logging_left_as_found() as logging_state:
        return _run(data, output_dir, options, stream, log_path, logging_state)


def _run(data: str, output_dir: str, options: PipelineOptions, stream, log_path: Optional[str],
         logging_state: _LoggingState) -> RunResult:
    from tfx import v1 as tfx

    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    pipeline, beam_args = build(data, output_dir, options, stream)
    pool_address = beam_portable.external_pool_address(beam_args)
    if pool_address:
        beam_portable.check_pool(pool_address)
    reporter = StageReporter(configs.PIPELINE_NAME, configs.metadata_path(output_dir), stream)
    log_handler = _log_to_file(log_path or new_log_path(output_dir), logging_state)
    print(f"Full log: {log_handler.baseFilename}", file=stream, flush=True)

    guards = None
    try:
        with contextlib.ExitStack() as scope:
            if pool_address:  # Beam's internals are guarded for this run only
                guards = scope.enter_context(beam_portable.runner_guards())
            if beam_dependencies.workers_run_here(beam_args):  # no TFX package to build for them
                scope.enter_context(beam_dependencies.installed_dependencies())
            with reporter:
                tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as e:
        # The traceback goes to the log file only (INFO); the console gets the CLI's one line.
        logging.getLogger(__name__).info("pipeline run failed", exc_info=True)
        worker_failures = guards.take_failures() if guards else []
        if worker_failures:  # the job's own error only says "Error running pipeline."
            raise beam_portable.BeamWorkerError(worker_failures[0]) from e
        raise
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()

    empty = StageResult("", 0.0, False, "")
    push = reporter.results.get("Pusher", empty).details
    pushed_path = push.get("pushed_path")
    blessed = bool(reporter.results.get("Evaluator", empty).details.get("blessed"))
    if not options.enable_training:
        print("Data stages done (training disabled).", file=stream, flush=True)
    elif pushed_path and push.get("already_served"):
        print(f"Model blessed; the same model is already served: {pushed_path}", file=stream, flush=True)
    elif pushed_path:
        print(f"Model blessed and pushed: {pushed_path}", file=stream, flush=True)
    else:
        print("Model NOT blessed: nothing was pushed (see the Evaluator line above).", file=stream, flush=True)
    return RunResult(output_dir, reporter.results, blessed, pushed_path)
