"""Keeping the console for the project's own lines. TensorFlow's C++ start-up lines (CUDA
stubs, cuDNN/cuFFT registration, CPU features, TensorRT) are written to file descriptor 2
before any Python logging exists, and google-api-core and aiplatform warn about the Python
version on import. A run sends all of it to its log file; the other commands drop it."""

import contextlib
import io
import logging
import os
import re
import sys
import threading
import warnings

# Warnings on import that say nothing about the command's work.
_IMPORT_WARNINGS = r"google(\.|$)"
# Lines native libraries write to file descriptor 2 that say nothing about the command's work:
# libpng on a PNG's colour profile it ignores (OpenCV's imread), TFLite on its CPU delegate
# (BlazeFace).
NATIVE_NOISE = re.compile(r"libpng warning: iCCP: .*|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*")
# Python loggers whose lines say nothing about the command's work: matplotlib's font cache
# ("Matplotlib is building the font cache", "generated new fontManager") on its first import.
_NOISY_LOGGERS = ("matplotlib",)


def quiet_imports() -> None:
    """Before TensorFlow is imported: no C++ log lines below FATAL, no import-time
    FutureWarnings from google packages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning, module=_IMPORT_WARNINGS)


@contextlib.contextmanager
def import_warnings_ignored():
    """For an entry point, around a first import that would warn before its log exists: the
    import-time FutureWarnings of google packages are ignored for the with-block. Only this
    filter is taken away afterwards: the filters the imported modules install stay (Beam's
    `once` for its deprecation warnings; warnings.catch_warnings would drop them)."""
    before = list(warnings.filters)
    warnings.filterwarnings("ignore", category=FutureWarning, module=_IMPORT_WARNINGS)
    ours = warnings.filters[0]
    try:
        yield
    finally:
        if ours not in before and ours in warnings.filters:
            warnings.filters.remove(ours)
            warnings._filters_mutated()  # what filterwarnings itself calls: cached decisions are redone


def quiet_libraries() -> None:
    """For an entry point: libraries' own log lines (matplotlib's font cache) held to errors."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def native_noise_filtered(noise: "re.Pattern[str]" = NATIVE_NOISE):
    """For an entry point: what native code writes to file descriptor 2 passes through a
    filter that drops the `noise` lines and passes the others on as whole lines (a native
    line can no longer land inside one of the command's); the process's own sys.stderr
    writes to the console directly, so the command's lines keep their order. Everything is
    restored on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    console_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def forward():
        pending = b""
        while True:
            data = os.read(read_fd, 65536)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not noise.fullmatch(line.decode("utf-8", "replace")):
                    os.write(console_fd, line + b"\n")
        if pending and not noise.fullmatch(pending.decode("utf-8", "replace")):
            os.write(console_fd, pending)

    thread = threading.Thread(target=forward, name="native-stderr-filter", daemon=True)
    thread.start()
    saved_stderr = sys.stderr
    if sys.stderr is sys.__stderr__:  # not a test's capture, which is left as it is
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(console_fd), "wb", buffering=0), write_through=True,
                                      encoding=saved_stderr.encoding or "utf-8", errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stdout.flush()
        os.dup2(console_fd, 2)  # the pipe's last write end closes: the filter reads to its end
        thread.join(timeout=5)
        if not thread.is_alive():  # else a child still holds the pipe: the filter keeps both fds
            os.close(read_fd)
            os.close(console_fd)
        # the wrapper stays open: logging handlers made meanwhile hold it, and it still writes
        # to the console
        sys.stderr = saved_stderr


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


class WholeLines(io.TextIOBase):
    """A text stream that passes on whole lines only, each in one write under a lock. print()
    writes its text and its newline separately, so two threads printing at once (the console's
    stage reporter and a component's executor) could splice one line into the middle of
    another; here each thread's text waits for its newline. A flush passes on what waits (the
    calling thread's). Anything else (buffer, errors, ...) is the wrapped stream's."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self._lock = threading.RLock()  # re-entrant: a signal handler may print while a write holds it
        self._pending = threading.local()

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        complete, newline, rest = pending.rpartition("\n")
        self._pending.text = rest
        if newline:
            with self._lock:
                self.stream.write(complete + newline)
        return len(text)

    def flush(self) -> None:
        rest, self._pending.text = getattr(self._pending, "text", ""), ""
        with self._lock:
            if rest:
                self.stream.write(rest)
            self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding

    @property
    def errors(self):
        return self.stream.errors


@contextlib.contextmanager
def whole_lines_on_stdout():
    """sys.stdout as WholeLines while the block runs; then flushed and put back."""
    saved = sys.stdout
    sys.stdout = WholeLines(saved)
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()
        sys.stdout = saved
