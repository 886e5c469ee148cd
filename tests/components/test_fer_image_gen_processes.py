"""Decoding in worker processes (components/fer_image_gen/decoding.py) writes what decoding on
threads writes, byte for byte, and leaves no process behind: at the end, on an early close, on
an exception or an interrupt in the consumer, and when a worker dies."""

import os
import shutil
import signal

import cv2
import pytest

from components.fer_example_gen.encoding import serialize_examples
from components.fer_image_gen import component, decoding, folders
from core import names
from tests.components.test_fer_image_gen_folders import make_bad_tree, put
from tools import demo_data


def children():
    """This process's child processes (Linux /proc: subprocess children are not multiprocessing's,
    so multiprocessing.active_children() does not see them)."""
    pids = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:  # a thread that has just ended
            pass
    return pids


@pytest.fixture
def tree(tmp_path):
    """A bad file of every kind, a duplicate and a train/test leak, among generated faces."""
    root = tmp_path / "data"
    bad = make_bad_tree(root)
    happy = sorted((root / "train" / "happy").glob("0*.png"))
    shutil.copy(happy[0], root / "train" / "happy" / "copy.png")
    put(root / "test" / "happy" / "leaked.bmp", cv2.imread(str(happy[1]), cv2.IMREAD_GRAYSCALE))
    return root, bad


def outputs(folder):
    """Every file written under `folder`, by relative path: its bytes."""
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


def ingest(root, out, **options):
    return component.write_examples(str(root), lambda s: str(out / f"Split-{s}"), str(out / names.REJECTS_FILE),
                                    folders.IngestOptions(**options))


def test_threads_and_processes_write_the_same_bytes(tree, tmp_path, monkeypatch):
    root, bad = tree
    runs = {}
    for mode, processes in (("threads", False), ("processes", True), ("auto", "auto")):
        if mode == "auto":  # a tree this small gets threads: count it as big
            monkeypatch.setattr(folders, "PROCESSES_FROM_FILES", 0)
        out = tmp_path / mode
        stats, splits = ingest(root, out, processes=processes, batch=5)  # many batches, both workers
        runs[mode] = outputs(out), stats.as_dict(), splits, dict(stats.decoded_in)
    files, stats, splits, decoded_in = runs["threads"]
    assert decoded_in == {"2 threads": stats["rows"] - 1}  # the stray file outside any emotion folder is not decoded
    assert stats["rejected"] == len(bad) and (stats["duplicates"], stats["leaks"]) == (1, 1)
    assert len(files) == 2 + len(splits) and all(files.values())  # rejects.csv, duplicates.csv, one file a split
    for mode in ("processes", "auto"):
        assert runs[mode][3] == {"2 processes": stats["rows"] - 1}
        assert runs[mode][:3] == runs["threads"][:3], mode


def test_auto_decodes_a_small_tree_on_threads_and_a_detector_in_this_process(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 30, seed=1)
    reader = folders.FolderReader(str(tmp_path))
    list(reader)
    assert dict(reader.stats.decoded_in) == {"2 threads": 30}
    reader = folders.FolderReader(str(tmp_path), folders.IngestOptions(processes=True), detector=lambda image: [])
    list(reader)
    assert dict(reader.stats.decoded_in) == {"this process": 30}
    with pytest.raises(ValueError, match="processes must be True, False or 'auto'"):
        folders.FolderReader(str(tmp_path), folders.IngestOptions(processes="yes"))
    with pytest.raises(ValueError, match="importable by name"):
        list(folders.FolderReader(str(tmp_path), folders.IngestOptions(processes=True),
                                  encode=lambda labels, pixels: serialize_examples(labels, pixels)))


def test_an_early_close_ends_the_workers(tree):
    root, _ = tree
    before = children()
    items = iter(folders.FolderReader(str(root), folders.IngestOptions(processes=True, batch=2),
                                      encode=serialize_examples))
    taken = [next(items) for _ in range(5)]
    assert len(children() - before) == 2 and len(taken) == 5
    items.close()
    assert children() == before


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_the_consumer_ends_the_workers(tree, tmp_path, error):
    root, _ = tree
    before = children()

    def output_dir_for_split(split):
        if split == "test":  # after the first train, valid and eval records were written
            assert len(children() - before) == 2
            raise error("stop")
        return str(tmp_path / split)

    with pytest.raises(error, match="stop"):
        component.write_examples(str(root), output_dir_for_split, str(tmp_path / names.REJECTS_FILE),
                                 folders.IngestOptions(processes=True, batch=2))
    assert children() == before


def test_a_worker_that_dies_is_one_error_line_and_the_others_end(tree):
    root, _ = tree
    before = children()
    items = iter(folders.FolderReader(str(root), folders.IngestOptions(processes=True, batch=1)))
    next(items), next(items)  # the stray file outside the emotion folders, then the first decoded
    os.kill(min(children() - before), signal.SIGKILL)
    with pytest.raises(decoding.WorkerError, match=r"decoding worker \d \(pid \d+, exit code -9\): ended while"):
        list(items)
    assert children() == before


def test_workers_that_cannot_start_fall_back_to_threads_under_auto_and_are_an_error_when_asked_for(
        tmp_path, monkeypatch, caplog):
    demo_data.write_demo_tree(str(tmp_path), 30, seed=1)
    monkeypatch.setattr(decoding, "_WORKER_CODE", "import sys; sys.exit(3)  # {root}")
    monkeypatch.setattr(folders, "PROCESSES_FROM_FILES", 0)
    before = children()
    reader = folders.FolderReader(str(tmp_path), folders.IngestOptions(processes="auto"))
    assert len([item for item in reader if isinstance(item, folders.Face)]) == 30
    assert dict(reader.stats.decoded_in) == {"2 threads": 30}
    assert "worker processes did not start" in caplog.text
    with pytest.raises(decoding.WorkerError, match=r"exit code 3\): ended before it started"):
        list(folders.FolderReader(str(tmp_path), folders.IngestOptions(processes=True)))
    assert children() == before


def test_a_batch_that_raises_in_a_worker_is_one_error_line(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 7, seed=1)
    paths = sorted(str(p) for p in tmp_path.rglob("*.png"))[:1]
    with decoding.WorkerPool(1) as pool:
        job = pool.submit(paths, [0], 10 ** 6, 10 ** 6, os.path.join)  # importable by name, and raises on these
        with pytest.raises(decoding.WorkerError, match=r"decoding worker 0 .*: TypeError"):
            job.result()


def test_what_an_import_prints_to_stdout_does_not_reach_the_protocol(tmp_path, monkeypatch):
    # a print after the answers' pipe was taken off fd 1: where an import's banner would come
    noisy = decoding._WORKER_CODE.replace("sys.path[0] =", "print('a banner on stdout'); sys.path[0] =")
    assert noisy != decoding._WORKER_CODE
    monkeypatch.setattr(decoding, "_WORKER_CODE", noisy)
    demo_data.write_demo_tree(str(tmp_path), 7, seed=1)
    paths = sorted(str(p) for p in tmp_path.rglob("*.png"))
    with decoding.WorkerPool(1) as pool:
        loaded = pool.submit(paths, [0] * len(paths), 10 ** 6, 10 ** 6, None).result()
    assert len(loaded) == len(paths) and all(done.pixels is not None for done in loaded)
