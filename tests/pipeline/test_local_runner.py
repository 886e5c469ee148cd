"""Runner helpers: the Beam mode chosen by data size, and row estimates."""

import os

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
