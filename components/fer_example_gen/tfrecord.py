"""A gzip TFRecord writer whose compression overlaps with parsing.

tf.io.TFRecordWriter compresses on the calling thread while holding the GIL, so on the
ingest path it cannot overlap with CSV parsing (measured: a writer thread made it slower).
The TFRecord framing is small and fixed, and Python's zlib releases the GIL while it
deflates, so this writer frames records on the caller's thread and compresses 1 MiB chunks
on a background thread. Files are standard gzip TFRecords (tests read them back with
tf.data.TFRecordDataset(compression_type="GZIP")).

    record = uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
"""

import gzip
import queue
import struct
import threading

import google_crc32c
import tensorflow as tf

_MASK_DELTA = 0xA282EAD8
_CHUNK_BYTES = 1 << 20


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def frame(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


class GzipTFRecordWriter:
    # zlib level 1: ~3.5x faster than the default level 6, files ~3 % larger (bench/results/ingest.md).
    def __init__(self, path: str, compresslevel: int = 1):
        self._file = tf.io.gfile.GFile(path, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=compresslevel, mtime=0)
        self._buffer = bytearray()
        self._chunks: "queue.Queue" = queue.Queue(maxsize=4)
        self._error = None
        self._thread = threading.Thread(target=self._compress, name="tfrecord-gzip", daemon=True)
        self._thread.start()

    def _compress(self):
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                return
            try:
                self._gzip.write(chunk)
            except BaseException as e:  # re-raised on the caller's thread
                self._error = e

    def _check(self):
        if self._error is not None:
            raise self._error

    def write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))  # frame(record), appended without a copy of the whole
        self._buffer += length
        self._buffer += _masked_crc(length)
        self._buffer += record
        self._buffer += _masked_crc(record)
        if len(self._buffer) >= _CHUNK_BYTES:
            self._check()
            self._chunks.put(bytes(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        if self._buffer:
            self._chunks.put(bytes(self._buffer))
            self._buffer.clear()
        self._chunks.put(None)
        self._thread.join()
        self._gzip.close()
        self._file.close()
        self._check()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SplitWriters:
    """One gzip TFRecord file per split, opened when the split's first record comes: the writer
    every ExampleGen of this project shares (CSV and image folders), so their outputs have one
    layout. `output_dir_for_split(split)` gives a split's directory; `compresslevel` is gzip's
    (0: stored blocks, still gzip files)."""

    FILE_NAME = "data_tfrecord-00000-of-00001.gz"

    def __init__(self, output_dir_for_split, compresslevel: int = 1):
        self._dir_for = output_dir_for_split
        self._level = compresslevel
        self._writers = {}

    def write(self, split: str, record: bytes) -> None:
        writer = self._writers.get(split)
        if writer is None:
            directory = self._dir_for(split)
            tf.io.gfile.makedirs(directory)
            writer = self._writers[split] = GzipTFRecordWriter(f"{directory.rstrip('/')}/{self.FILE_NAME}", self._level)
        writer.write(record)

    def splits(self, order):
        """The splits written, in `order`."""
        return [s for s in order if s in self._writers]

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
