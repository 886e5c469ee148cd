"""Streaming parser for FER-2013 CSV files (`emotion,pixels[,Usage]`).

Pure Python + numpy, no TensorFlow: it backs both the ExampleGen component and the
`fer-pipeline check-csv` command, so the two can never disagree about which rows are valid.

Every data row ends in exactly one of three places, so that
``rows == valid + rejected + skipped`` always holds:
  * valid    -- parsed, assigned a split, handed to the caller;
  * rejected -- a :class:`Reject` with the line number and a reason from REASONS;
  * skipped  -- valid rows beyond ``max_rows_per_split`` (only when a limit is asked for).
Blank lines are not rows (csv yields nothing for them) and are not counted.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import gzip
import io
import queue
import sys
import threading
import zlib
from typing import IO, Dict, Iterator, Optional, Union

import numpy as np

from core import features

# Why a row was rejected. Kept short and stable: they are keys in JSON reports.
FIELD_COUNT = "field_count"  # the row has a different number of fields than the header
PIXEL_COUNT = "pixel_count"  # not exactly 2,304 pixel values
PIXEL_VALUE = "pixel_value"  # a pixel that is not an integer in 0..255
LABEL = "label"  # emotion is not an integer in 0..6
USAGE = "usage"  # Usage is not Training / PublicTest / PrivateTest
CSV_SYNTAX = "csv_syntax"  # the csv module could not read the record (e.g. a NUL byte)
REASONS = (FIELD_COUNT, PIXEL_COUNT, PIXEL_VALUE, LABEL, USAGE, CSV_SYNTAX)

DEFAULT_MAX_REJECT_FRACTION = 0.001  # 0.1 %
DEFAULT_SEED = 42
DEFAULT_VALIDATION_FRACTION = 0.1  # of the Training rows (of all rows without a Usage column)
DEFAULT_EVAL_FRACTION = 0.1  # of all rows, used only without a Usage column (80/10/10)
_MAX_CARVE_BLOCK = 1000

# One pixel string is ~8 KB; the default csv field limit (128 KB) only matters for
# corrupt files (an unclosed quote swallowing many lines), which we want as one reject.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FerCsvError(ValueError):
    """The file as a whole cannot be read as a FER CSV (bad header, unreadable file)."""


class RejectThresholdExceeded(ValueError):
    """More rows were rejected than the configured fraction allows."""


@dataclasses.dataclass(frozen=True)
class Row:
    line: int  # 1-based physical line where the record starts
    label: int
    pixels: np.ndarray  # uint8, shape (NUM_PIXELS,)
    split: str


@dataclasses.dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    detail: str


@dataclasses.dataclass
class ParseStats:
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    skipped: int = 0
    by_reason: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    by_split: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    has_usage_column: bool = True

    def merge(self, other: "ParseStats") -> None:
        self.rows += other.rows
        self.valid += other.valid
        self.rejected += other.rejected
        self.skipped += other.skipped
        self.by_reason.update(other.by_reason)
        self.by_split.update(other.by_split)
        self.has_usage_column = self.has_usage_column and other.has_usage_column

    @property
    def reject_fraction(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "reject_fraction": self.reject_fraction,
            "by_reason": {r: self.by_reason.get(r, 0) for r in REASONS},
            "by_split": {s: self.by_split.get(s, 0) for s in features.SPLITS},
            "has_usage_column": self.has_usage_column,
        }

    def check_threshold(self, max_reject_fraction: float, source: str = "input") -> None:
        """Raises RejectThresholdExceeded when the reject fraction is above the limit."""
        if self.rows and self.reject_fraction > max_reject_fraction:
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.by_reason.items()) if n)
            raise RejectThresholdExceeded(
                f"{source}: {self.rejected} of {self.rows} rows rejected "
                f"({self.reject_fraction:.3%}), above the allowed {max_reject_fraction:.3%} "
                f"({reasons}). See the rejects output for line numbers and reasons."
            )


def open_text(path: str) -> IO[str]:
    """Opens a plain or gzip CSV as text: gzip is detected by content, a UTF-8 BOM is
    dropped, CRLF is left to the csv module (newline='') and undecodable bytes become
    U+FFFD so that they reject their row instead of aborting the whole file."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise FerCsvError(f"{path}: cannot open: {e.strerror or e}") from e
    if raw.peek(2)[:2] == b"\x1f\x8b":
        raw.close()
        raw = io.BufferedReader(_ReadAhead(gzip.GzipFile(path, "rb")), buffer_size=_READ_AHEAD_CHUNK)  # type: ignore
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


_READ_AHEAD_CHUNK = 1 << 20


class _ReadAhead(io.RawIOBase):
    """Reads (and so decompresses) the next chunks on a background thread. zlib releases
    the GIL while it inflates, so decompression overlaps with parsing on another core."""

    def __init__(self, source, depth: int = 4):
        super().__init__()
        self._source = source
        self._chunks: "queue.Queue" = queue.Queue(maxsize=depth)
        self._pending = memoryview(b"")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="csv-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self):
        try:
            while not self._stop.is_set():
                chunk = self._source.read(_READ_AHEAD_CHUNK)
                self._chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as e:  # handed to the reading thread
            self._chunks.put(e)

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            chunk = self._chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            if not chunk:
                self._chunks.put(b"")  # stay at EOF for later reads
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self):
        if not self.closed:
            # A reader that stops early leaves the thread blocked on a full queue: drain it.
            self._stop.set()
            while self._thread.is_alive():
                try:
                    self._chunks.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._source.close()
        super().close()


def parse_pixels(text: str) -> np.ndarray:
    """Parses a space-separated pixel string into uint8[2304].

    Raises _RowError(PIXEL_COUNT | PIXEL_VALUE). Rows of digits and spaces with values in
    range are parsed in C; anything else takes a token-by-token path, which also accepts
    other whitespace and names the first bad token.
    """
    values = _parse_canonical(text)
    if values is not None:
        return values
    tokens = text.split()
    for position, token in enumerate(tokens):
        if not _is_int(token):
            raise _RowError(PIXEL_VALUE, f"pixel {position} is {token[:20]!r}, not an integer")
    if len(tokens) != features.NUM_PIXELS:
        raise _RowError(PIXEL_COUNT, f"{len(tokens)} pixel values, expected {features.NUM_PIXELS}")
    for position, token in enumerate(tokens):
        if not 0 <= int(token) <= 255:
            raise _RowError(PIXEL_VALUE, f"pixel {position} is {int(token)}, outside 0..255")
    return np.array([int(t) for t in tokens], dtype=np.uint8)


_DIGITS_AND_SPACE = b"0123456789 "


def _parse_canonical(text: str) -> Optional[np.ndarray]:
    """uint8[2304] for a row of only ASCII digits and spaces with values in range, else
    None. With nothing but digits and spaces, np.fromstring consumes every token (it can
    neither stop early at a bad token nor read a sign), and overflowing tokens saturate
    above 255, so the count and range checks below are complete."""
    if not text.isascii() or text.encode("ascii").translate(None, _DIGITS_AND_SPACE):
        return None
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if values.size != features.NUM_PIXELS or values.max() > 255:
        return None
    return values.astype(np.uint8)


class StratifiedCarve:
    """Seeded, stratified assignment of rows to splits by share, in one streaming pass.

    Each class's rows are taken in blocks of `block` consecutive rows of that class (10 for
    shares of 0.9/0.1); within a block the splits' slots are a seeded shuffle. So every
    class, rare ones included, gets its share of each split to within one block, whatever
    the file order, and the same file and seed always give the same split.
    """

    def __init__(self, shares: Dict[str, float], seed: int):
        if abs(sum(shares.values()) - 1.0) > 1e-9:
            raise ValueError(f"split shares must add up to 1, got {shares}")
        block = next((b for b in range(1, _MAX_CARVE_BLOCK + 1)
                      if all(abs(v * b - round(v * b)) < 1e-6 for v in shares.values())), None)
        if block is None:
            raise ValueError(f"split shares {shares} must be multiples of 1/{_MAX_CARVE_BLOCK}")
        self._slots = np.array([name for name, v in shares.items() for _ in range(round(v * block))])
        self._rng = np.random.default_rng(seed)
        self._pending: Dict[int, list] = {}

    def assign(self, label: int) -> str:
        pending = self._pending.get(label)
        if not pending:
            pending = self._pending[label] = list(self._rng.permutation(self._slots))
        return str(pending.pop())


def parse_label(text: str) -> int:
    token = text.strip()
    if not _is_int(token) or not 0 <= int(token) < features.NUM_CLASSES:
        raise _RowError(LABEL, f"emotion {token[:20]!r} is not an integer in 0..{features.NUM_CLASSES - 1}")
    return int(token)


def _is_int(token: str) -> bool:
    t = token[1:] if token[:1] in "+-" else token
    return t.isascii() and t.isdigit()


class _RowError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class FerCsvReader:
    """Iterates a FER CSV as Row / Reject objects; ``stats`` is complete after iteration.

    Args:
      path: the CSV (plain or gzip).
      seed: seeds the stratified carves (StratifiedCarve).
      validation_fraction: share of the Training rows carved out as `valid` (with no Usage
        column: share of all rows).
      eval_fraction: share of all rows that become `eval`, only without a Usage column.
      max_rows_per_split: keep at most this many valid rows of each split, in file order.
    """

    def __init__(
        self,
        path: str,
        *,
        seed: int = DEFAULT_SEED,
        validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
        eval_fraction: float = DEFAULT_EVAL_FRACTION,
        max_rows_per_split: Optional[int] = None,
    ):
        for name, value in (("validation_fraction", validation_fraction), ("eval_fraction", eval_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if validation_fraction + eval_fraction >= 1.0:
            raise ValueError(f"validation_fraction + eval_fraction must be below 1, got "
                             f"{validation_fraction} + {eval_fraction}")
        if max_rows_per_split is not None and max_rows_per_split <= 0:
            raise ValueError(f"max_rows_per_split must be positive, got {max_rows_per_split}")
        self.path = path
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.eval_fraction = eval_fraction
        self.max_rows_per_split = max_rows_per_split
        self.stats = ParseStats()

    def __iter__(self) -> Iterator[Union[Row, Reject]]:
        stats = self.stats = ParseStats()
        v, e = self.validation_fraction, self.eval_fraction
        training_carve = StratifiedCarve({features.TRAIN_SPLIT: 1.0 - v, features.VALID_SPLIT: v}, self.seed)
        no_usage_carve = StratifiedCarve(
            {features.TRAIN_SPLIT: 1.0 - v - e, features.VALID_SPLIT: v, features.EVAL_SPLIT: e}, self.seed)
        with open_text(self.path) as stream:
            reader = csv.reader(stream)
            header, header_line = self._read_header(reader)
            columns = {name.strip().lower(): i for i, name in enumerate(header)}
            emotion_i = columns[features.CSV_EMOTION_COLUMN.lower()]
            pixels_i = columns[features.CSV_PIXELS_COLUMN.lower()]
            usage_i = columns.get(features.CSV_USAGE_COLUMN.lower())
            stats.has_usage_column = usage_i is not None
            n_fields = len(header)
            last_line = header_line
            while True:
                start_line = last_line + 1
                try:
                    record = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    last_line = reader.line_num
                    yield self._reject(start_line, CSV_SYNTAX, str(e))
                    continue
                except (OSError, EOFError, zlib.error) as e:  # e.g. a truncated or corrupt gzip stream
                    raise FerCsvError(f"{self.path} near line {start_line}: cannot read the file: {e}") from e
                last_line = reader.line_num
                if not record:  # blank line: not a row
                    continue
                stats.rows += 1
                try:
                    if len(record) != n_fields:
                        raise _RowError(FIELD_COUNT, f"{len(record)} fields, expected {n_fields}")
                    label = None
                    if usage_i is not None:
                        usage = record[usage_i].strip()
                        split = features.USAGE_TO_SPLIT.get(usage)
                        if split is None:
                            raise _RowError(USAGE, f"Usage {usage[:30]!r} is not one of {', '.join(features.USAGE_TO_SPLIT)}")
                        if split == features.TRAIN_SPLIT:  # the carve is stratified: it needs the label
                            label = parse_label(record[emotion_i])
                            split = training_carve.assign(label)
                    else:
                        label = parse_label(record[emotion_i])
                        split = no_usage_carve.assign(label)
                    if self.max_rows_per_split is not None and stats.by_split[split] >= self.max_rows_per_split:
                        # Beyond the limit only the split is known: the pixels are not validated.
                        stats.skipped += 1
                        continue
                    if label is None:
                        label = parse_label(record[emotion_i])
                    pixels = parse_pixels(record[pixels_i])
                except _RowError as e:
                    yield self._reject(start_line, e.reason, e.detail)
                    continue
                stats.valid += 1
                stats.by_split[split] += 1
                yield Row(line=start_line, label=label, pixels=pixels, split=split)

    def _reject(self, line: int, reason: str, detail: str) -> Reject:
        if reason == CSV_SYNTAX:  # csv errors happen before the row is counted
            self.stats.rows += 1
        self.stats.rejected += 1
        self.stats.by_reason[reason] += 1
        return Reject(line=line, reason=reason, detail=detail)

    def _read_header(self, reader) -> tuple:
        try:
            for header in reader:
                if header:
                    break
            else:
                raise FerCsvError(f"{self.path}: the file is empty (expected a header 'emotion,pixels,Usage')")
        except csv.Error as e:
            raise FerCsvError(f"{self.path} line {reader.line_num}: unreadable header: {e}") from e
        except (OSError, EOFError, zlib.error) as e:  # a gzip cut off or corrupt before its header ends
            raise FerCsvError(f"{self.path}: cannot read the header: {e}") from e
        names = [h.strip().lower() for h in header]
        required = (features.CSV_EMOTION_COLUMN.lower(), features.CSV_PIXELS_COLUMN.lower())
        missing = [c for c in required if c not in names]
        if missing or len(set(names)) != len(names):
            raise FerCsvError(
                f"{self.path} line {reader.line_num}: header {','.join(header)[:80]!r} must name the "
                f"columns emotion and pixels (and optionally Usage), each once"
            )
        return header, reader.line_num


def scan(path: str, rejects_out: Optional[IO[str]] = None, **reader_kwargs) -> ParseStats:
    """Reads a whole file, writing rejects as CSV (line,reason,detail) if asked."""
    reader = FerCsvReader(path, **reader_kwargs)
    writer = RejectsWriter(rejects_out) if rejects_out is not None else None
    for item in reader:
        if writer is not None and isinstance(item, Reject):
            writer.write(item)
    return reader.stats


class RejectsWriter:
    """Writes rejects as a CSV with a header: [file,]line,reason,detail."""

    def __init__(self, stream: IO[str], with_file: bool = False):
        self._with_file = with_file
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow((["file"] if with_file else []) + ["line", "reason", "detail"])

    def write(self, reject: Reject, file: str = "") -> None:
        row = [reject.line, reject.reason, reject.detail]
        self._writer.writerow([file] + row if self._with_file else row)


