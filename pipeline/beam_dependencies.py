"""Keeps TFX from packaging itself for Beam workers that already have it.

Each Beam-powered TFX executor (StatisticsGen, Transform, Evaluator, ...) that gets Beam
arguments without a dependency flag calls `tfx.utils.dependency_utils.make_beam_dependency_flags`,
which copies the installed TFX (48 MB) into a new temporary directory, runs `setup.py sdist`
there and adds the result as `--extra_package`, for remote workers that lack TFX. The
directory is never deleted: every component of every local run left about 49 MB on disk in
/tmp (1,374 such directories, 67 GB, had filled this machine's disk), and a small run's five
builds cost about 15 s (bench/results/run_tempfiles.md).

The workers of the runners `fer-pipeline run` uses locally run in this very environment: the
DirectRunner in this process or in subprocesses of this interpreter, and the embedded job
service's EXTERNAL pool, which `fer-pipeline beam-workers` starts from the same installation
(pipeline/beam_portable.py). For those, `installed_dependencies()` makes the inference a no-op
for one run. Any other runner (a Flink or Spark job server, Dataflow) keeps TFX's inference,
which is what its remote workers need unless the Beam arguments name a container or package.

On Kubeflow each Beam task runs TFX's container entrypoint in the pipeline image, where no
function of ours is in the way; there `in_pipeline_image()` names that image as the
DirectRunner's SDK container, one of the flags that tell TFX the workers have their
dependencies (TFX checks them in `make_beam_dependency_flags`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

from pipeline import beam_portable

# Beam's names for its DirectRunners, without the optional "runner" ending Beam also accepts;
# "" is no --runner, which is the DirectRunner.
_DIRECT_RUNNERS = ("", "direct", "bundlebaseddirect", "switchingdirect", "testdirect")


# The Beam options whose presence makes TFX leave the dependencies to the user (as TFX 1.16's
# make_beam_dependency_flags lists them).
_DEPENDENCY_OPTIONS = ("extra_packages", "setup_file", "requirements_file", "worker_harness_container_image",
                       "sdk_container_image")


def _names_direct_runner(given: Optional[Dict[str, Any]]) -> bool:
    return beam_portable.runner_name(given) in _DIRECT_RUNNERS


def on_direct_runner(beam_args: List[str]) -> bool:
    """True when `beam_args` run the Beam stages on one of Beam's DirectRunners (by name, in
    any case, with or without "Runner", or by its module path)."""
    return _names_direct_runner(beam_portable.given_options(beam_args))


def workers_run_here(beam_args: List[str]) -> bool:
    """True when `beam_args` run the Beam stages on the DirectRunner or on the embedded job
    service with an EXTERNAL worker pool, whose workers import this installation."""
    return on_direct_runner(beam_args) or beam_portable.external_pool_address(beam_args) is not None


def in_pipeline_image(beam_args: List[str], image: str) -> List[str]:
    """`beam_args` for tasks that run in the pipeline image `image`: on the DirectRunner, whose
    workers run inside the task's container, the image is named as their SDK container, so TFX
    builds no package of itself in each task. Other runners, and arguments that already name the
    workers' dependencies, are returned as given."""
    given = beam_portable.given_options(beam_args)
    if not _names_direct_runner(given) or any(given.get(name) for name in _DEPENDENCY_OPTIONS):
        return list(beam_args)
    return [*beam_args, f"--sdk_container_image={image}"]


def _unchanged(beam_pipeline_args: List[str]) -> List[str]:
    return beam_pipeline_args


_lock = threading.Lock()
_users = 0
_saved: Optional[Callable[[List[str]], List[str]]] = None


@contextlib.contextmanager
def installed_dependencies() -> Iterator[None]:
    """For the with-block, TFX's executors take their Beam arguments as given instead of
    building a TFX package for the workers; TFX's function is put back on exit."""
    from tfx.utils import dependency_utils

    global _users, _saved
    with _lock:  # overlapping runs in threads: TFX's function comes back when the last one ends
        if _users == 0:
            _saved = dependency_utils.make_beam_dependency_flags
            dependency_utils.make_beam_dependency_flags = _unchanged
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                dependency_utils.make_beam_dependency_flags = _saved
