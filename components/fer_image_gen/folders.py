"""Image folders -> 48x48 gray faces with labels and splits, streamed. No TensorFlow.

It backs both the FerImageGen component and `fer-pipeline check-data`, so the two can never
disagree about which images are good.

Layouts (folder names are case-insensitive):
  DIR/<split>/<emotion>/...   train/training -> Training (train + the seeded `valid` carve);
                              val/valid/validation/publictest -> eval; test/privatetest -> test,
                              or eval when there is no validation folder (the Kaggle images
                              edition has only train/ and test/). With train/ alone: 80/10/10.
  DIR/<emotion>/...           no splits: the seeded, stratified 80/10/10 carve.
Emotion folders: the FER names and a few synonyms (EMOTION_FOLDERS). Anything else is refused
with one line (LayoutError) listing the folders found and the names accepted.

Order. Within a split, the images of all emotion folders are taken in the order of their path
inside the emotion folder (file name order; ties by class id). The split rules are the CSV's
(components/fer_example_gen/parser.StratifiedCarve, same shares, same seed), applied to that
order, so a CSV and a folder tree holding the same faces in the same order (row i written as
<split>/<emotion>/<i, zero-padded>.png) give the same examples in the same splits.

Every file under an emotion folder is one row and ends in exactly one place, as for the CSV:
``rows == valid + rejected + skipped``. A rejected file is quarantined with its path and one of
REASONS; nothing is dropped silently and nothing raises for one bad file.

Conversion is the live client's (components/fer_image_gen/images.py): decode as OpenCV's
IMREAD_COLOR does, BGR -> gray, and client.faces.crop_faces (area-averaged resize to 48x48)
of the whole image or, with a face detector, of the largest face found.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import heapq
import logging
import os
import pickle
import shutil
import sqlite3
import tempfile
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from components.fer_example_gen import parser as csv_rules
from components.fer_image_gen import decoding
from components.fer_image_gen.images import (DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, NOT_IMAGE, REASONS,
                                             SYMLINK_LOOP, Detector, Loaded)
from core import features


TRAINING = "Training"  # the source splits, as the CSV's Usage names them
PUBLIC_TEST = "PublicTest"
PRIVATE_TEST = "PrivateTest"
NO_SPLITS = "(no split folders)"
SPLIT_FOLDERS = {"train": TRAINING, "training": TRAINING,
                 "val": PUBLIC_TEST, "valid": PUBLIC_TEST, "validation": PUBLIC_TEST, "publictest": PUBLIC_TEST,
                 "test": PRIVATE_TEST, "privatetest": PRIVATE_TEST}
EMOTION_FOLDERS = {**{name: i for i, name in enumerate(features.CLASS_NAMES)},
                   "anger": 0, "disgusted": 1, "fearful": 2, "happiness": 3, "sadness": 4, "surprised": 5}
# The reporting side of a leak: a face of Training seen again in one of these.
_HELD_OUT = (features.EVAL_SPLIT, features.TEST_SPLIT)
_SPLIT_CODES = {name: i + 1 for i, name in enumerate(features.SPLITS)}  # 0: no split (skipped)
# The duplicate index's SQLite page caches (its sorter adds ~1 MiB): bounded, whatever the number of files.
_SQLITE_CACHE_KIB = 256
_LOG = logging.getLogger(__name__)  # not the root logger: logging.warning() would configure it
# IngestOptions.processes="auto": worker processes for a tree of at least this many files. On
# 2 cores they were even with threads at 5,000 files and ahead from 10,000 (bench/results/folder_ingest.md).
PROCESSES_FROM_FILES = 8192


class LayoutError(ValueError):
    """The folder tree as a whole cannot be read as a data set (one line: what and where)."""


@dataclasses.dataclass(frozen=True)
class Face:
    path: str  # relative to the data folder
    label: int
    split: str
    pixels: np.ndarray  # uint8 [NUM_PIXELS]
    record: Optional[bytes] = None  # the serialized tf.Example, when the reader was given an encoder


@dataclasses.dataclass(frozen=True)
class Quarantined:
    path: str  # relative to the data folder
    reason: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """A duplicate (the same file content twice) or a leak (the same 48x48 face in Training and
    in a held-out split)."""

    kind: str  # "duplicate" or "leak"
    path: str
    split: str
    first_path: str
    first_split: str


@dataclasses.dataclass
class IngestStats(csv_rules.ParseStats):
    duplicates: int = 0
    leaks: int = 0
    by_split_label: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    layout: str = ""
    # Files by where they were decoded ("2 threads", "2 processes", "this process"): how, not
    # what, so not in as_dict (the outputs' summary), which is the same whichever decoded them.
    decoded_in: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def as_dict(self) -> dict:
        report = super().as_dict()
        report.pop("has_usage_column")
        report["by_reason"] = {r: self.by_reason.get(r, 0) for r in REASONS}
        report["by_split_emotion"] = {s: {name: self.by_split_label.get((s, i), 0)
                                          for i, name in enumerate(features.CLASS_NAMES)}
                                      for s in features.SPLITS}
        report["duplicates"] = self.duplicates
        report["leaks"] = self.leaks
        report["layout"] = self.layout
        return report


# --- layout ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """The folders of one source split: (class id, folder) pairs, and how rows get a split."""

    name: str  # TRAINING, PUBLIC_TEST, PRIVATE_TEST or NO_SPLITS
    folders: Tuple[Tuple[int, str], ...]
    fixed_split: Optional[str]  # None: the seeded carve assigns it


def _subfolders(path: str) -> Tuple[List[str], List[str]]:
    """(folder names, other entry names) of `path`, sorted."""
    folders, others = [], []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                (folders if _is_dir(entry) else others).append(entry.name)
    except OSError as e:
        raise LayoutError(f"{path}: cannot list the folder: {e.strerror or e}") from None
    return sorted(folders), sorted(others)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop or a broken link: not a folder (it is quarantined as a file)
        return False


def _accepted_names() -> str:
    emotions = ", ".join(EMOTION_FOLDERS)
    return f"splits: {', '.join(SPLIT_FOLDERS)}; emotions: {emotions}"


def _emotion_folders(path: str, names: List[str]) -> Tuple[Tuple[int, str], ...]:
    unknown = [n for n in names if n.lower() not in EMOTION_FOLDERS]
    if unknown or not names:
        raise LayoutError(
            f"{path}: folder(s) {', '.join(unknown) if unknown else '(none)'} are not emotions; found: "
            f"{', '.join(names) or 'no folders'}; accepted (any case): {', '.join(EMOTION_FOLDERS)}")
    return tuple((EMOTION_FOLDERS[n.lower()], os.path.join(path, n)) for n in names)


def discover(root: str) -> Tuple[str, List[Source], List[str]]:
    """(layout, sources in ingest order, files lying outside any emotion folder) of `root`.
    Raises LayoutError for a tree that is neither layout."""
    if not os.path.isdir(root):
        raise LayoutError(f"{root}: not a folder")
    names, loose = _subfolders(root)
    lower = [n.lower() for n in names]
    if names and all(n in SPLIT_FOLDERS for n in lower):
        by_source: Dict[str, List[Tuple[int, str]]] = collections.defaultdict(list)
        for name in names:
            sub = os.path.join(root, name)
            emotions, sub_loose = _subfolders(sub)
            by_source[SPLIT_FOLDERS[name.lower()]] += _emotion_folders(sub, emotions)
            loose += [os.path.join(name, f) for f in sub_loose]
        if TRAINING not in by_source:
            raise LayoutError(f"{root}: split folders {', '.join(names)} but no train/ (or training/) folder")
        sources = []
        if PUBLIC_TEST in by_source or PRIVATE_TEST in by_source:
            sources.append(Source(TRAINING, tuple(by_source[TRAINING]), None))
            if PUBLIC_TEST in by_source:
                sources.append(Source(PUBLIC_TEST, tuple(by_source[PUBLIC_TEST]), features.EVAL_SPLIT))
                if PRIVATE_TEST in by_source:
                    sources.append(Source(PRIVATE_TEST, tuple(by_source[PRIVATE_TEST]), features.TEST_SPLIT))
            else:  # no validation folder: test is the reporting split
                sources.append(Source(PRIVATE_TEST, tuple(by_source[PRIVATE_TEST]), features.EVAL_SPLIT))
            layout = "splits: " + ", ".join(s.name for s in sources)
        else:
            sources = [Source(NO_SPLITS, tuple(by_source[TRAINING]), None)]
            layout = "splits: Training only (80/10/10 carve)"
        return layout, sources, loose
    if names and all(n in EMOTION_FOLDERS for n in lower):
        return "emotions (80/10/10 carve)", [Source(NO_SPLITS, _emotion_folders(root, names), None)], loose
    unknown = [n for n in names if n.lower() not in SPLIT_FOLDERS and n.lower() not in EMOTION_FOLDERS]
    if not names:
        what = "no folders"
    elif unknown:
        what = f"folder(s) {', '.join(unknown)} are neither splits nor emotions"
    else:
        what = "split and emotion folders are mixed at the same level"
    raise LayoutError(f"{root}: {what}; found: {', '.join(names) or 'nothing'}; accepted (any case): "
                      f"{_accepted_names()}")


# --- walking ---------------------------------------------------------------------------------


class Entry(NamedTuple):
    """One file of the walk. A tuple, not a frozen dataclass: one is made per file on the
    walking thread, and a frozen dataclass costs ~4x more to make (bench/results/folder_ingest.md)."""

    key: Tuple[str, ...]  # the path's parts inside its emotion folder: the ingest order
    label: int
    path: str  # absolute
    loop: bool = False  # a folder link that leads back above itself


def _walk_folder(folder: str, label: int, key: Tuple[str, ...] = (), seen: Tuple[Tuple[int, int], ...] = ()
                 ) -> Iterator[Entry]:
    """Files under `folder` (subfolders included, followed through links), in name order. A
    folder reached again through a link above it is one Entry with loop=True."""
    try:
        st = os.stat(folder)
        ident = (st.st_dev, st.st_ino)
    except OSError:
        yield Entry(key, label, folder, loop=False)
        return
    if ident in seen:
        yield Entry(key, label, folder, loop=True)
        return
    seen = seen + (ident,)
    # The names alone, sorted, and the few folders apart (names are unique within a folder, so
    # the order is that of (name, is_dir) pairs); then packed into one string, NUL-separated
    # (no file name holds a NUL), while the folder is merged with its split's other emotion
    # folders: 1 byte a character of an ASCII name instead of ~123 bytes a file for a pair in a list.
    names: List[str] = []
    folders_here = set()
    try:
        with os.scandir(folder) as it:
            for e in it:
                names.append(e.name)
                if _is_dir(e):
                    folders_here.add(e.name)
    except OSError:
        yield Entry(key, label, folder)  # quarantined as unreadable when it is opened
        return
    if not names:
        return
    names.sort()
    packed = "\0".join(names)
    del names
    end = -1
    while end < len(packed):
        start = end + 1
        end = packed.find("\0", start)
        if end < 0:
            end = len(packed)
        name = packed[start:end]
        is_dir = name in folders_here
        path = os.path.join(folder, name)
        if is_dir and os.path.islink(path) and _leads_above(path):
            yield Entry(key + (name,), label, path, loop=True)
        elif is_dir:
            yield from _walk_folder(path, label, key + (name,), seen)
        else:
            yield Entry(key + (name,), label, path)


def _leads_above(link: str) -> bool:
    """Whether a folder link points at its own folder or one above it (a loop)."""
    target = os.path.realpath(link)
    here = os.path.realpath(os.path.dirname(link))
    return here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def walk(source: Source) -> Iterator[Entry]:
    """The files of a source, all emotion folders merged in path order (ties: class id)."""
    return heapq.merge(*(_walk_folder(folder, label) for label, folder in source.folders),
                       key=lambda e: (e.key, e.label))


class _InPlace:
    """A worker's answer for a batch, with the files it was not given (None: skipped, or a
    link loop) put back in their places: _decode_batch's list."""

    def __init__(self, job: decoding.Job, batch: List[Tuple[Entry, Optional[str]]]):
        self.job, self.batch = job, batch

    def result(self) -> List[Optional[Loaded]]:
        done = iter(self.job.result())
        return [None if split is None or entry.loop else next(done) for entry, split in self.batch]


# --- the whole tree --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    seed: int = csv_rules.DEFAULT_SEED
    validation_fraction: float = csv_rules.DEFAULT_VALIDATION_FRACTION
    eval_fraction: float = csv_rules.DEFAULT_EVAL_FRACTION
    max_rows_per_split: Optional[int] = None
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Decoding runs on `workers` threads or worker processes (components/fer_image_gen/decoding.py),
    # `batch` files a task, a bounded window of tasks ahead; in order either way, with the same
    # outputs. Threads share the GIL with the per-file Python, so 2 threads decode no faster
    # than 1; processes do, but each costs ~0.12 s of CPU and ~56 MB to start. With a face
    # detector: one thread, in-process, always (the detector is an object of this process); so
    # with workers=1.
    workers: int = 2
    # True: processes. False: threads. "auto": processes for a tree of at least
    # PROCESSES_FROM_FILES files (big enough to pay for their start), else threads.
    processes: Union[bool, str] = "auto"
    batch: int = 64


class _FileIndex:
    """The content hash, face hash and split of every hashed file, by its ordinal in walk
    order, kept on disk so that memory does not grow with the number of files: appended to a
    flat file while the tree is read (a few KiB buffered), then loaded into a temporary SQLite
    database whose page caches are capped (_SQLITE_CACHE_KIB; peak ~1.5 MiB measured at 80,000
    files, bench/results/folder_ingest.md), where the duplicates and leaks are joined, sorted
    and given their paths. The folder is removed by close()."""

    RECORD = np.dtype([("o", "<i8"), ("content", "<i8"), ("face", "<i8"), ("split", "u1")])
    _FLUSH_ROWS = 4096

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fer-image-index-")
        self._raw = open(os.path.join(self.dir, "files.bin"), "wb")
        self._pending: List[Tuple[int, int, int, int]] = []
        self.rows = 0

    def add(self, ordinal: int, content: int, face: int, split_code: int) -> None:
        self._pending.append((ordinal, content, face, split_code))
        if len(self._pending) >= self._FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._raw.write(np.array(self._pending, self.RECORD).tobytes())
            self.rows += len(self._pending)
            self._pending = []

    def pairs(self) -> "sqlite3.Connection":
        """A database with found(o, kind, first): each duplicate (a file whose content an
        earlier file has, with the first of them) and each leak (an eval or test face that a
        Training file has too, with the first of those)."""
        self._flush()
        self._raw.close()
        db = sqlite3.connect(os.path.join(self.dir, "index.db"), isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size=-{_SQLITE_CACHE_KIB}",
                       f"temp.cache_size=-{_SQLITE_CACHE_KIB}"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("BEGIN")  # one transaction, never committed: the database is thrown away
        db.execute("CREATE TABLE files(o INTEGER PRIMARY KEY, content INTEGER, face INTEGER, split INTEGER)")
        with open(os.path.join(self.dir, "files.bin"), "rb") as raw:
            while True:
                chunk = np.fromfile(raw, self.RECORD, count=self._FLUSH_ROWS)  # as Python rows: ~180 bytes each
                if not len(chunk):
                    break
                db.executemany("INSERT INTO files VALUES (?, ?, ?, ?)",
                               zip(*(chunk[field].tolist() for field in self.RECORD.names)))
        held_out = ", ".join(str(_SPLIT_CODES[s]) for s in _HELD_OUT)
        db.executescript(f"""
            CREATE INDEX by_content ON files(content, o);
            CREATE TABLE found(o INTEGER, kind TEXT, first INTEGER);
            INSERT INTO found SELECT f.o, 'duplicate', g.first FROM files f JOIN
                (SELECT content, MIN(o) AS first FROM files GROUP BY content HAVING COUNT(*) > 1) g
                ON f.content = g.content WHERE f.o != g.first;
            CREATE INDEX training_faces ON files(face, o) WHERE face != 0 AND split NOT IN ({held_out});
            INSERT INTO found SELECT f.o, 'leak', MIN(t.o) FROM files f JOIN files t
                ON t.face = f.face AND t.face != 0 AND t.split NOT IN ({held_out})
                WHERE f.face != 0 AND f.split IN ({held_out}) GROUP BY f.o;
        """)
        return db

    def close(self) -> None:
        if not self._raw.closed:
            self._raw.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FolderReader:
    """Iterates a folder tree as Face / Quarantined / Finding objects, streamed: a bounded
    window of files is being decoded at any time. ``stats`` is complete after iteration.

    Memory: the images are never held, and the duplicate index is on disk (_FileIndex, 25 bytes
    a hashed file in a temporary folder). What still grows with the data set is the sorted
    listing of names of the emotion folders being merged, those of one source split at a time
    (bench/results/folder_ingest.md measures it)."""

    def __init__(self, root: str, options: IngestOptions = IngestOptions(), detector: Optional[Detector] = None,
                 encode: Optional[Callable[[List[int], np.ndarray], List[bytes]]] = None):
        v, e = options.validation_fraction, options.eval_fraction
        for name, value in (("validation_fraction", v), ("eval_fraction", e)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if v + e >= 1.0:
            raise ValueError(f"validation_fraction + eval_fraction must be below 1, got {v} + {e}")
        if options.max_rows_per_split is not None and options.max_rows_per_split <= 0:
            raise ValueError(f"max_rows_per_split must be positive, got {options.max_rows_per_split}")
        self.root = os.path.abspath(root)
        self.options = options
        self.detector = detector
        # (labels, pixels [N, 2304]) -> records, run where the files are decoded; for worker
        # processes, a module-level function (it travels by name)
        self.encode = encode
        if options.processes not in (True, False, "auto"):
            raise ValueError(f"processes must be True, False or 'auto', got {options.processes!r}")
        self.layout, self.sources, self.loose = discover(self.root)
        self.stats = IngestStats(layout=self.layout)

    def _relative(self, path: str) -> str:
        return path[len(self.root) + 1:]  # every path walked starts with the root

    def _assigned(self) -> Iterator[Tuple[Entry, Optional[str]]]:
        """Each file with its split (None: beyond max_rows_per_split), by the CSV's rules."""
        o = self.options
        v, e = o.validation_fraction, o.eval_fraction
        training_carve = csv_rules.StratifiedCarve({features.TRAIN_SPLIT: 1.0 - v, features.VALID_SPLIT: v}, o.seed)
        no_usage_carve = csv_rules.StratifiedCarve(
            {features.TRAIN_SPLIT: 1.0 - v - e, features.VALID_SPLIT: v, features.EVAL_SPLIT: e}, o.seed)
        counted: collections.Counter = collections.Counter()  # rows given each split, as the CSV counts them
        for source in self.sources:
            carve = training_carve if source.name == TRAINING else no_usage_carve
            for entry in walk(source):
                split = source.fixed_split or carve.assign(entry.label)
                if o.max_rows_per_split is not None and counted[split] >= o.max_rows_per_split:
                    yield entry, None
                    continue
                counted[split] += 1
                yield entry, split

    def _decode_batch(self, batch: List[Tuple[Entry, Optional[str]]]) -> List[Optional[Loaded]]:
        """The batch's files decoded in this process (None: skipped, or a link loop)."""
        o = self.options
        todo = [entry for entry, split in batch if split is not None and not entry.loop]
        done = iter(decoding.decode_batch([e.path for e in todo], [e.label for e in todo], o.max_pixels, o.max_bytes,
                                          self.encode, self.detector))
        return [None if split is None or entry.loop else next(done) for entry, split in batch]

    def _submit_to_workers(self, pool: decoding.WorkerPool, batch: List[Tuple[Entry, Optional[str]]]) -> "_InPlace":
        """_decode_batch's work sent to a worker process."""
        o = self.options
        todo = [entry for entry, split in batch if split is not None and not entry.loop]
        return _InPlace(pool.submit([e.path for e in todo], [e.label for e in todo], o.max_pixels, o.max_bytes,
                                    self.encode), batch)

    def _process_mode(self) -> Union[bool, str]:
        """IngestOptions.processes as it applies to this reader: False with a detector, with one
        worker, or (auto) with an encoder that a worker cannot import by name."""
        wanted = self.options.processes
        if not wanted or self.detector is not None or self.options.workers <= 1:
            return False
        if self.encode is not None:
            try:
                pickle.dumps(self.encode)  # a module-level function: its name travels, not its code
                # ... and a worker's __main__ is not the caller's
                importable = getattr(self.encode, "__module__", None) != "__main__"
            except (pickle.PicklingError, AttributeError, TypeError):
                importable = False
            if not importable:
                if wanted is True:
                    raise ValueError(f"processes=True needs an encoder importable by name, got {self.encode!r}")
                return False
        return wanted

    def _decoded(self) -> Iterator[Tuple[Entry, Optional[str], Optional[Loaded]]]:
        """_assigned()'s files with their decoded images, in order; a bounded window of
        batches is decoded ahead on threads or in worker processes (IngestOptions)."""
        o = self.options
        workers = 1 if self.detector is not None else max(1, o.workers)
        mode = self._process_mode()

        def batches():
            batch: List[Tuple[Entry, Optional[str]]] = []
            for item in self._assigned():
                batch.append(item)
                if len(batch) == o.batch:
                    yield batch
                    batch = []
            if batch:
                yield batch

        if workers == 1:
            for batch in batches():
                self.stats.decoded_in["this process"] += len(batch)
                yield from ((e, s, l) for (e, s), l in zip(batch, self._decode_batch(batch)))
            return
        big = mode == "auto" and self._top_level_files() >= PROCESSES_FROM_FILES
        pool = self._start_workers(workers, mode) if mode is True or big else None
        try:
            with concurrent.futures.ThreadPoolExecutor(1 if pool else workers,
                                                       thread_name_prefix="fer-image-decode") as threads:
                where = f"{workers} {'processes' if pool else 'threads'}"
                window: collections.deque = collections.deque()
                for batch in batches():
                    self.stats.decoded_in[where] += len(batch)
                    window.append((batch, self._submit_to_workers(pool, batch) if pool
                                   else threads.submit(self._decode_batch, batch)))
                    if len(window) > 2 * workers:
                        done, answer = window.popleft()
                        yield from ((e, s, l) for (e, s), l in zip(done, answer.result()))
                while window:
                    done, answer = window.popleft()
                    yield from ((e, s, l) for (e, s), l in zip(done, answer.result()))
        finally:
            if pool is not None:
                pool.close()

    def _top_level_files(self) -> int:
        """The number of entries directly in the emotion folders (subfolders not listed): the
        size of the tree for IngestOptions.processes="auto", at ~0.3 us a file (a listing each)."""
        count = 0
        for source in self.sources:
            for _, folder in source.folders:
                try:
                    count += len(os.listdir(folder))
                except OSError:
                    pass  # quarantined by the walk
        return count

    @staticmethod
    def _start_workers(n: int, mode) -> Optional[decoding.WorkerPool]:
        """A started pool of `n` worker processes; with mode "auto", None (threads then) when
        they cannot start: the outputs are the same either way."""
        try:
            return decoding.WorkerPool(n)
        except (OSError, decoding.WorkerError) as e:
            if mode is True:
                raise
            _LOG.warning("FolderReader: decoding on threads: worker processes did not start: %s", e)
            return None

    def _quarantine(self, path: str, reason: str, detail: str) -> Quarantined:
        self.stats.rejected += 1
        self.stats.by_reason[reason] += 1
        return Quarantined(path, reason, detail)

    def __iter__(self) -> Iterator[Union[Face, Quarantined, Finding]]:
        """Faces and quarantined files in ingest order, then the duplicates and leaks."""
        stats = self.stats = IngestStats(layout=self.layout)
        for path in self.loose:
            stats.rows += 1
            yield self._quarantine(path, NOT_IMAGE, "a file outside any emotion folder")
        index = _FileIndex()
        try:
            yield from self._read_all(stats, index)
            yield from self._findings(index)
        finally:
            index.close()

    def _read_all(self, stats: IngestStats, index: _FileIndex) -> Iterator[Union[Face, Quarantined]]:
        for ordinal, (entry, split, loaded) in enumerate(self._decoded()):
            stats.rows += 1
            if split is None:
                stats.skipped += 1
                continue
            path = self._relative(entry.path)
            if entry.loop:
                yield self._quarantine(path, SYMLINK_LOOP, "a folder link that leads back to a folder above it")
                continue
            assert loaded is not None
            if loaded.content_hash:  # hashed files only: the others can be neither duplicates nor leaks
                index.add(ordinal, loaded.content_hash, loaded.face_hash or 0, _SPLIT_CODES[split])
            if loaded.pixels is None:
                yield self._quarantine(path, loaded.reason, loaded.detail)
                continue
            stats.valid += 1
            stats.by_split[split] += 1
            stats.by_split_label[(split, entry.label)] += 1
            yield Face(path, entry.label, split, loaded.pixels, loaded.record)

    def _findings(self, index: _FileIndex) -> Iterator[Finding]:
        """The duplicates and leaks, in walk order of the later file (a duplicate before a
        leak). Their paths are found again by listing the tree (no file is read); memory stays
        bounded however many there are (the index's database holds them)."""
        db = index.pairs()
        try:
            db.execute("CREATE TABLE paths(o INTEGER PRIMARY KEY, path BLOB)")
            needed = db.execute("SELECT o FROM found UNION SELECT first FROM found ORDER BY 1")
            want = next(needed, None)
            if want is None:
                return
            batch = []
            for ordinal, entry in enumerate(e for source in self.sources for e in walk(source)):
                if ordinal == want[0]:
                    batch.append((ordinal, os.fsencode(self._relative(entry.path))))  # any file name, undecodable too
                    if len(batch) >= 1024:
                        db.executemany("INSERT INTO paths VALUES (?, ?)", batch)
                        batch = []
                    want = next(needed, None)
                    if want is None:
                        break
            db.executemany("INSERT INTO paths VALUES (?, ?)", batch)
            names = {code: name for name, code in _SPLIT_CODES.items()}
            rows = db.execute("""
                SELECT found.kind, a.path, fa.split, b.path, fb.split FROM found
                JOIN paths a ON a.o = found.o JOIN files fa ON fa.o = found.o
                JOIN paths b ON b.o = found.first JOIN files fb ON fb.o = found.first
                ORDER BY found.o, found.kind""")
            for kind, path, split, first_path, first_split in rows:
                if kind == "duplicate":
                    self.stats.duplicates += 1
                else:
                    self.stats.leaks += 1
                yield Finding(kind, os.fsdecode(path), names[split], os.fsdecode(first_path), names[first_split])
        finally:
            db.close()


def scan(root: str, options: IngestOptions = IngestOptions(), detector: Optional[Detector] = None,
         on_item: Optional[Callable[[object], None]] = None) -> IngestStats:
    """Reads a whole tree (check-data), handing each Quarantined and Finding to `on_item`."""
    reader = FolderReader(root, options, detector)
    with contextlib.closing(iter(reader)) as items:  # an error in on_item ends the decoding at once
        for item in items:
            if on_item is not None and not isinstance(item, Face):
                on_item(item)
    return reader.stats


def folder_files(root: str) -> Iterable[str]:
    """Every file the ingest would read, for a row estimate (no decoding)."""
    _, sources, loose = discover(root)
    yield from loose
    for source in sources:
        for entry in walk(source):
            yield entry.path
