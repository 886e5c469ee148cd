"""The process's open-file limit (RLIMIT_NOFILE), for `serve` only: process-wide state, so it
is set by the command's start-up, never by the library the tests start servers with.

Each REST connection holds a file descriptor. Many systems start processes with a soft limit
of 1024 under a hard one in the hundreds of thousands; a server that stays at 1024 runs out of
descriptors long before its connection cap (asyncio then stops accepting for a second at a
time), so `serve` raises the soft limit to the hard one, as servers do, and keeps the REST
connection cap within what the limit leaves after the rest of the process (model files,
gRPC, TensorFlow's threads)."""

from typing import Optional, Tuple

try:
    import resource
except ImportError:  # not on Windows; nothing to raise there
    resource = None

# Descriptors left to everything but REST connections: gRPC's connections and the model's
# files (a few dozen at idle here) with room to spare.
RESERVED_FDS = 256


def raise_soft_limit() -> Optional[Tuple[int, int, int]]:
    """Raises the soft RLIMIT_NOFILE to the hard one; (old soft, new soft, hard), or None where
    there is no such limit. An unlimited hard limit is capped at what the kernel allows
    (nr_open), which setrlimit requires."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # a container that refuses it: the old limit stays
            pass
    new_soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, new_soft, hard


def connection_budget(soft_limit: int) -> int:
    """How many REST connections the soft limit leaves room for."""
    if soft_limit == getattr(resource, "RLIM_INFINITY", -1):
        return 1 << 30
    return max(1, soft_limit - RESERVED_FDS)
