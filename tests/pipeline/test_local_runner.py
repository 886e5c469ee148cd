"""Runner helpers: the Beam mode chosen by data size, row estimates, and the run's logging (set up
for the run, and as it was afterwards)."""

import os

import pytest

from pipeline import local_runner
from tools import demo_data


def test_small_data_runs_in_memory_large_data_uses_all_cores():
    assert local_runner.default_beam_args(1000) == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    large = local_runner.default_beam_args(local_runner.MULTI_PROCESSING_MIN_ROWS)
    assert large == ["--direct_running_mode=multi_processing", f"--direct_num_workers={os.cpu_count()}"]


def test_estimate_rows_from_file_size(tmp_path):
    plain, gz = tmp_path / "a.csv", tmp_path / "a.csv.gz"
    demo_data.write_demo_file(str(plain), rows=200)
    demo_data.write_demo_file(str(gz), rows=200)
    for path in (plain, gz):
        assert 100 < local_runner.estimate_rows(str(path)) < 400
    assert local_runner.estimate_rows(str(plain), max_rows_per_split=10) == 30


def test_known_noise_is_dropped_from_the_console_only():
    import logging

    noise = logging.LogRecord("absl", logging.WARNING, "", 0, "ArtifactQuery.property_predicate is not supported.", (), None)
    real = logging.LogRecord("absl", logging.WARNING, "", 0, "Schema anomaly in feature pixels", (), None)
    keep = local_runner._DropKnownNoise()
    assert not keep.filter(noise) and keep.filter(real)


def test_the_console_format_leaves_the_traceback_to_the_log_file():
    import logging
    import sys

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("apache_beam", logging.ERROR, "", 0, "a stage failed", (), sys.exc_info())
    console = local_runner._WithoutTraceback("%(levelname)s:%(name)s:%(message)s").format(record)
    assert console == "ERROR:apache_beam:a stage failed"
    assert "Traceback" in logging.Formatter("%(message)s").format(record)  # the log file's formatter keeps it


def _logging_state():
    """Level, handlers, filters and propagation of the root and every logger, with each
    handler's level, filters and formatter."""
    import logging

    loggers = {"": logging.getLogger(), **{name: logger for name, logger in logging.Logger.manager.loggerDict.items()
                                           if isinstance(logger, logging.Logger)}}
    return {name: (logger.level, logger.propagate, list(logger.filters),
                   [(handler, handler.level, list(handler.filters), handler.formatter) for handler in logger.handlers])
            for name, logger in loggers.items()}


def _changed(before, after):
    """The loggers of `before` whose state differs in `after` (loggers made in between are the
    libraries' own, from their first import)."""
    return {name: (state, after.get(name)) for name, state in before.items() if after.get(name) != state}


def test_logging_is_left_as_it_was_after_a_failure_inside_the_run(tmp_path):
    import logging
    import sys

    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("mine: %(message)s"))
    logging.getLogger("apache_beam").addHandler(console)  # a library's own console handler, as TF's
    try:
        before = _logging_state()
        with pytest.raises(RuntimeError, match="stage failed"):
            with local_runner._logging_left_as_found():
                handler = local_runner._log_to_file(str(tmp_path / "logs" / "run.log"))
                assert handler in logging.getLogger().handlers and console.level == logging.WARNING
                assert isinstance(console.formatter, local_runner._WithoutTraceback)
                raise RuntimeError("stage failed")
        assert not _changed(before, _logging_state())
        handler.close()
    finally:
        logging.getLogger("apache_beam").removeHandler(console)


def test_a_console_handler_a_library_makes_during_the_run_is_put_back_too(tmp_path):
    """TensorFlow's and absl's loggers come with the imports inside a run; the changes the run's
    log-file set-up makes to their console handlers are undone as well."""
    import logging
    import sys

    name = "a_library_imported_during_the_run"
    try:
        with local_runner._logging_left_as_found() as state:
            console = logging.StreamHandler(sys.stderr)  # made after the state was taken
            console.setFormatter(logging.Formatter("mine: %(message)s"))
            logging.getLogger(name).addHandler(console)
            handler = local_runner._log_to_file(str(tmp_path / "logs" / "run.log"), state)
            assert console.level == logging.WARNING and console.filters
        handler.close()
        assert console.level == logging.NOTSET and not console.filters
        assert console.formatter._fmt == "mine: %(message)s"
    finally:
        for h in list(logging.getLogger(name).handlers):
            logging.getLogger(name).removeHandler(h)


@pytest.mark.e2e  # the data stages, twice: about 75 s on 2 busy cores
def test_run_leaves_logging_as_it_found_it_twice_in_one_process(tmp_path):
    """The data stages on a few generated rows, twice (the second cached): after each run the
    root, absl and the library loggers hold the handlers, filters, levels and formats they had."""
    import io
    import logging
    import sys

    from pipeline.options import PipelineOptions

    csv = tmp_path / "demo.csv"
    demo_data.write_demo_file(str(csv), rows=60, seed=3)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("mine: %(message)s"))
    tf_like = logging.getLogger("tensorflow")
    tf_like.addHandler(console)
    try:
        for attempt in range(2):
            before = _logging_state()
            stream = io.StringIO()
            local_runner.run(str(csv), str(tmp_path / "out"), PipelineOptions(enable_training=False), stream=stream,
                             log_path=str(tmp_path / f"run{attempt}.log"))
            assert "<== Transform" in stream.getvalue(), stream.getvalue()
            assert not _changed(before, _logging_state()), f"run {attempt + 1} changed logging"
            assert console.formatter._fmt == "mine: %(message)s" and console.level == logging.NOTSET
        assert "INFO" in (tmp_path / "run1.log").read_text()  # the log file got the run's lines
    finally:
        tf_like.removeHandler(console)
