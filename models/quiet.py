"""Keeping the console for the project's own lines. TensorFlow's C++ start-up lines (CUDA
stubs, cuDNN/cuFFT registration, CPU features, TensorRT) are written to file descriptor 2
before any Python logging exists, and google-api-core and aiplatform warn about the Python
version on import. A run sends all of it to its log file; the other commands drop it."""

import contextlib
import io
import os
import sys
import warnings

# Warnings on import that say nothing about the command's work.
_IMPORT_WARNINGS = r"google(\.|$)"


def quiet_imports() -> None:
    """Before TensorFlow is imported: no C++ log lines below FATAL, no import-time
    FutureWarnings from google packages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning, module=_IMPORT_WARNINGS)


@contextlib.contextmanager
def native_output_to(path: str):
    """Everything written to file descriptor 2 (TensorFlow's and Beam's native logs) and every
    Python warning go to `path`; sys.stderr stays the console."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stderr.flush()
    console_fd = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    saved_stderr, saved_showwarning = sys.stderr, warnings.showwarning
    sys.stderr = io.TextIOWrapper(os.fdopen(console_fd, "wb", buffering=0), write_through=True)
    log = os.fdopen(log_fd, "a", buffering=1)

    def to_log(message, category, filename, lineno, file=None, line=None):
        log.write(warnings.formatwarning(message, category, filename, lineno, line))
    warnings.showwarning = to_log
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        console = sys.stderr
        console.flush()
        os.dup2(console.fileno(), 2)  # descriptor 2 is the console again
        sys.stderr = saved_stderr
        # `console` stays open: logging handlers made during the run hold it, and it still
        # writes to the console.
        log.close()
