"""A benchmark made of cells (recipe_ablation.py, paper_gap.py): each cell runs in a process of
its own (a clean Keras state and global precision policy) and prints one JSON line starting
with {"cell"; that line is appended to the results file, and a cell with a line there is
skipped, so rerunning the same command continues where a killed run stopped (the cell itself
resumes from its checkpoints)."""

import json
import os
import subprocess
import sys
from typing import Callable, Iterable, List


def finished(results: str, keep: Callable[[dict], bool] = lambda record: True) -> set:
    """The cells with a result line in `results` (that `keep` accepts)."""
    if not os.path.exists(results):
        return set()
    with open(results) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {record["cell"] for record in records if keep(record)}


def run_cells(names: Iterable[str], results: str, command: Callable[[str], List[str]],
              keep: Callable[[dict], bool] = lambda record: True) -> int:
    """Runs `command(name)` for each cell not finished yet; 1 at the first cell that fails."""
    done = finished(results, keep)
    for name in names:
        if name in done:
            print(f"{name}: done (in {results})", flush=True)
            continue
        print(f"{name}: training", flush=True)
        result = subprocess.run([sys.executable, *command(name)], capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith('{"cell"')]
        if result.returncode or not lines:
            print(f"{name}: failed (exit {result.returncode})\n{result.stderr[-3000:]}", flush=True)
            return 1
        os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
        with open(results, "a") as f:
            f.write(lines[-1] + "\n")
        print(lines[-1], flush=True)
    return 0


def reached(history, target: float):
    """{"epoch", "seconds"} of the first epoch whose val_accuracy is at `target`, the epochs'
    wall seconds summed up to it; None if none is."""
    seconds = 0.0
    for h in history:
        seconds += h["seconds"]
        if h["val_accuracy"] >= target:
            return {"epoch": h["epoch"], "seconds": round(seconds, 1)}
    return None


def chosen(parser, listed: str, known: Iterable[str], what: str = "cells") -> List[str]:
    """The comma-separated names of `listed`; for a name not in `known`, the parser's one-line
    error (exit 2) naming it and the choices."""
    known = list(known)
    names = listed.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {', '.join(known)}")
    return names
