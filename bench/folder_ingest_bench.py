"""Folder ingest benchmark: FerImageGen's core (components/fer_image_gen/component.write_examples)
on 48x48 JPEGs against a bare OpenCV read-and-resize loop over the same files, and its memory.

Speed: both sides read the same generated tree (tools/demo_data.write_demo_tree, JPEG) in this
process, alternating, several rounds, best round kept (the machine is shared). The bare loop is
the floor: cv2.imread(gray) + cv2.resize to 48x48 per file, in a pre-listed order, one thread,
nothing checked, nothing kept or written. The ingest side does everything a run does: walk the
tree in order, read, check the header (pixel limit), decode, convert as the live client does,
hash for duplicates and leaks, carve the splits, encode tf.Examples, write gzip TFRecords and the
rejects, with the options a run gets by default (IngestOptions(): for this tree, 2 worker
processes; the 2-thread and 1-thread ingests are measured beside it). Goal: >= 0.5x the bare
loop's images/s, and >= 2,000 images/s on 2 cores.

Memory: the ingest of a tree of a quarter of the files (hard links to the first quarter of each
emotion folder) and of all N, each in a fresh process, on threads and in worker processes; peak
RSS before the ingest and during it (VmHWM, reset after the imports), and the largest worker's
peak RSS. Goal: RSS does not grow with the number of images (what does
grow is reported per file). Two trees, not one tree with max_rows_per_split: a row limit still
walks, lists and indexes every file, so it measured the growth with the images written only.

    .venv/bin/python bench/folder_ingest_bench.py --images 20000 --rounds 3
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bare_loop(paths):
    import cv2

    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
    return len(paths)


def ingest_options(mode, **extra):
    """IngestOptions for `mode`: "default" (what a run gets), "2 threads", "1 thread" or
    "2 processes". Older code (before IngestOptions.processes) had `threads` and only threads:
    None for "2 processes" there, so that the bench runs on both sides of an A/B."""
    import dataclasses

    from components.fer_image_gen import folders

    fields = {f.name for f in dataclasses.fields(folders.IngestOptions)}
    if mode == "default":
        return folders.IngestOptions(**extra)
    if "processes" not in fields:
        return None if mode == "2 processes" else folders.IngestOptions(threads=int(mode[0]), **extra)
    return folders.IngestOptions(workers=int(mode[0]), processes=mode.endswith("processes"), **extra)


def decoded_in(stats):
    """Where the files were decoded (IngestStats.decoded_in; older code: threads only)."""
    return dict(getattr(stats, "decoded_in", {})) or "threads (code without IngestStats.decoded_in)"


def ingest(root, mode="default", compresslevel=0):
    from components.fer_image_gen import component
    from core import names

    out = tempfile.mkdtemp()
    try:
        stats, _ = component.write_examples(root, lambda s: os.path.join(out, f"Split-{s}"),
                                            os.path.join(out, names.REJECTS_FILE), ingest_options(mode),
                                            compresslevel=compresslevel)
        return stats
    finally:
        shutil.rmtree(out)


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def part_tree(root, part_root, share):
    """Hard links to the first `share` of each emotion folder's files (name order)."""
    for folder, _, files in os.walk(root):
        if files:
            target = os.path.join(part_root, os.path.relpath(folder, root))
            os.makedirs(target, exist_ok=True)
            for name in sorted(files)[:max(1, int(len(files) * share))]:
                os.link(os.path.join(folder, name), os.path.join(target, name))


def _children_peak_rss_mb(stop, peak):
    """Until `stop` is set: every 20 ms, the largest VmHWM (peak RSS) of this process's children
    into peak[0]. (getrusage's ru_maxrss of a child counts the parent's pages it had between
    fork and exec: useless here.)"""
    me = os.getpid()
    while not stop.wait(0.02):
        for task in os.listdir(f"/proc/{me}/task"):
            try:
                with open(f"/proc/{me}/task/{task}/children") as f:
                    pids = f.read().split()
                for pid in pids:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            except OSError:  # a task or a child that has just ended
                pass


def memory_child(root, mode):
    """Runs in a fresh process: RSS after imports, then the peak RSS while ingesting the tree
    with `mode` (ingest_options) (the peak is reset after the imports: /proc/self/clear_refs),
    and the peak RSS of the largest worker process, if any."""
    import threading

    import tensorflow  # noqa: F401 - as in a run's executor

    from components.fer_image_gen import component
    from core import names

    options = ingest_options(mode)
    if options is None:
        print(json.dumps(None))
        return
    out = tempfile.mkdtemp()
    # A first small ingest loads what the ingest loads once (OpenCV's codecs, the thread pool).
    component.write_examples(root, lambda s: os.path.join(out, "warm", s), os.path.join(out, "warm", "r.csv"),
                             ingest_options(mode, max_rows_per_split=10))
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak RSS, to the current RSS
    stop, workers = threading.Event(), [0.0]
    sampler = threading.Thread(target=_children_peak_rss_mb, args=(stop, workers))
    sampler.start()
    try:
        stats, _ = component.write_examples(root, lambda s: os.path.join(out, f"Split-{s}"),
                                            os.path.join(out, names.REJECTS_FILE), options)
    finally:
        stop.set()
        sampler.join()
    shutil.rmtree(out)
    print(json.dumps({"images": stats.valid, "mode": mode, "decoded_in": decoded_in(stats),
                      "rss_before_mb": round(before, 2), "peak_rss_during_mb": round(_status_mb("VmHWM"), 2),
                      "largest_worker_peak_rss_mb": round(workers[0], 2)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keep", help="generate the tree here (kept) instead of a temporary folder")
    p.add_argument("--memory-child", nargs=2, metavar=("ROOT", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    import tensorflow  # noqa: F401 - import cost is not part of either timing

    from components.fer_image_gen import component  # noqa: F401 - nor TFX's (the first ingest paid for it)
    from tools import demo_data

    root = args.keep or tempfile.mkdtemp()
    t = time.perf_counter()
    if not os.path.isdir(os.path.join(root, "train")):
        demo_data.write_demo_tree(root, args.images, seed=0, image_format="jpg")
    generated = time.perf_counter() - t
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    runs = (("ingest_default", "default", 0), ("ingest_2_threads", "2 threads", 0), ("ingest_1_thread", "1 thread", 0),
            ("ingest_default_gzip_level_1", "default", 1))
    best = {"bare": float("inf"), **{key: float("inf") for key, _, _ in runs}}
    where = {}
    for _ in range(args.rounds):
        t = time.perf_counter()
        bare_loop(paths)
        best["bare"] = min(best["bare"], time.perf_counter() - t)
        for key, mode, level in runs:
            t = time.perf_counter()
            stats = ingest(root, mode, level)
            best[key] = min(best[key], time.perf_counter() - t)
            assert stats.valid == len(paths), (key, stats.valid, len(paths))
            where[key] = decoded_in(stats)
    # Memory: a tree of a quarter of the files and the whole tree, each in a fresh process, on
    # threads and in processes (a default run of the quarter tree would get threads, of the whole
    # one processes: two changes at once).
    part_root = tempfile.mkdtemp()
    part_tree(root, part_root, 0.25)
    memory = {}
    for mode in ("2 threads", "2 processes"):
        memory[mode] = []
        for tree in (part_root, root):
            child = subprocess.run([sys.executable, __file__, "--memory-child", tree, mode], capture_output=True,
                                   text=True, check=True)
            memory[mode].append(json.loads(child.stdout.strip().splitlines()[-1]))
    shutil.rmtree(part_root)

    def growth(mode):
        small, large = memory[mode]
        if small is None:
            return None
        grown = ((large["peak_rss_during_mb"] - large["rss_before_mb"])
                 - (small["peak_rss_during_mb"] - small["rss_before_mb"]))
        files = max(1, large["images"] - small["images"])
        return {"rss_growth_mb_from_quarter_tree_to_all": round(grown, 2),
                "rss_growth_bytes_per_file": round(grown * 2**20 / files),
                # The peaks themselves: "before" follows a warm-up ingest of the same tree (max 10 rows a
                # split, which still walks every file), so what that keeps is in "before", not the growth.
                "peak_rss_growth_bytes_per_file": round((large["peak_rss_during_mb"] - small["peak_rss_during_mb"])
                                                        * 2**20 / files),
                "largest_worker_peak_rss_growth_mb": round(large["largest_worker_peak_rss_mb"]
                                                           - small["largest_worker_peak_rss_mb"], 2)}

    n = len(paths)
    result = {
        "images": n,
        "image": "48x48 gray JPEG (tools/demo_data faces)",
        "tree_generated_in_s": round(generated, 1),
        "bare_cv2_seconds": round(best["bare"], 3),
        "bare_cv2_images_per_s": round(n / best["bare"]),
        "ingest_default_seconds": round(best["ingest_default"], 3),
        "ingest_default_images_per_s": round(n / best["ingest_default"]),
        "ingest_default_decoded_in": where["ingest_default"],
        "ingest_2_threads_images_per_s": round(n / best["ingest_2_threads"]),
        "ingest_1_thread_images_per_s": round(n / best["ingest_1_thread"]),
        "ingest_default_gzip_level_1_images_per_s": round(n / best["ingest_default_gzip_level_1"]),
        "ratio_ingest_over_bare_throughput": round(best["bare"] / best["ingest_default"], 2),
        "ratio_2_threads_over_bare_throughput": round(best["bare"] / best["ingest_2_threads"], 2),
        "goal_ratio_at_least": 0.5,
        "goal_images_per_s_at_least": 2000,
        "memory": memory,
        "memory_growth": {mode: growth(mode) for mode in memory},
        "rounds": args.rounds,
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
    }
    print(json.dumps(result, indent=1))
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
