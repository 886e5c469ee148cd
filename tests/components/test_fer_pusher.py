"""FerPusher: a byte-identical model already in the destination is not pushed again, and a
push to a local folder appears whole or not at all."""

import json
import os
import pathlib

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.fer_pusher import component


def _model(path, content=b"weights"):
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"graph")
    with open(os.path.join(path, "variables", "variables.data-00000-of-00001"), "wb") as f:
        f.write(content)
    return path


def test_find_identical_version(tmp_path):
    base = tmp_path / "fer"
    model = _model(str(tmp_path / "model" / "Format-Serving"))
    assert component.find_identical_version(model, str(base)) is None
    _model(str(base / "100"), b"other")
    _model(str(base / "200"))
    os.makedirs(base / "not-a-version")
    assert component.find_identical_version(model, str(base)) == str(base / "200")
    _model(str(base / "300"), b"newer, different")
    assert component.find_identical_version(model, str(base)) == str(base / "200")


def _run(tmp_path, base, blessed=True):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    _model(os.path.join(model.uri, "Format-Serving"))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    component.Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                            {"push_destination": proto_utils.proto_to_json(destination)})
    return pushed


def test_second_push_of_the_same_model_reuses_the_version(tmp_path):
    base = str(tmp_path / "serving")
    first = _run(tmp_path, base)
    assert first.get_int_custom_property("pushed") == 1 and len(os.listdir(base)) == 1
    second = _run(tmp_path, base)
    assert second.get_int_custom_property("pushed") == 1
    assert second.get_int_custom_property(component.REUSED_VERSION_PROPERTY) == 1
    assert second.get_string_custom_property("pushed_destination") == first.get_string_custom_property("pushed_destination")
    assert len(os.listdir(base)) == 1


def test_unblessed_model_is_not_pushed(tmp_path):
    base = str(tmp_path / "serving")
    pushed = _run(tmp_path, base, blessed=False)
    assert pushed.get_int_custom_property("pushed") == 0 and not os.path.exists(base)


_KILLED_PUSH = r"""
import os, signal, sys
from tfx.utils import io_utils
from components.fer_pusher import component
from tests.components import test_fer_pusher as t

real_copy = io_utils.copy_dir

def dies_half_way(src, dst, *args, **kwargs):  # SIGKILL once the variables are copied
    real_copy(os.path.join(src, "variables"), os.path.join(dst, "variables"))
    os.kill(os.getpid(), signal.SIGKILL)

component.io_utils.copy_dir = dies_half_way
t._run(t.pathlib.Path(sys.argv[1]), sys.argv[2])
"""


def test_a_push_killed_mid_copy_leaves_no_version_and_the_next_push_cleans_up(tmp_path):
    """What a model server watches (numeric folders) never holds a half-copied model, and the
    resumed run's push leaves the destination as an unbroken run would: one whole version."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    base = str(tmp_path / "serving")
    killed = subprocess.run([sys.executable, "-c", _KILLED_PUSH, str(tmp_path / "killed"), base], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    staging, lock = sorted(os.listdir(base))  # no numeric folder
    assert staging.startswith(component.STAGING_PREFIX) and lock == staging + component.LOCK_SUFFIX
    assert os.listdir(os.path.join(base, staging)) == ["variables"]

    pushed = _run(tmp_path, base)
    [version] = os.listdir(base)
    assert version.isdigit() and pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)
    assert sorted(os.listdir(os.path.join(base, version))) == ["saved_model.pb", "variables"]
    assert sorted(os.listdir(pushed.uri)) == ["saved_model.pb", "variables"]  # the artifact's archive copy


def test_a_running_push_s_staging_folder_stays_until_its_lock_is_free(tmp_path):
    import fcntl

    base = tmp_path / "serving"
    staging = base / f"{component.STAGING_PREFIX}100-abc"
    os.makedirs(staging)
    with open(str(staging) + component.LOCK_SUFFIX, "a") as held:  # another push, copying now
        fcntl.flock(held, fcntl.LOCK_EX)
        assert component.remove_unfinished_pushes(str(base)) == []
        assert staging.is_dir()
    assert component.remove_unfinished_pushes(str(base)) == [str(staging)]  # its process ended
    assert os.listdir(base) == []


def test_a_push_that_fails_removes_its_staging_folder(tmp_path, monkeypatch):
    import errno

    import pytest

    def disk_full(src, dst, *args, **kwargs):
        os.makedirs(dst)
        raise OSError(errno.ENOSPC, "No space left on device")

    model = _model(str(tmp_path / "m"))
    monkeypatch.setattr(component.io_utils, "copy_dir", disk_full)
    with pytest.raises(OSError, match="No space left"):
        component.push_atomically(model, str(tmp_path / "serving"), "200")
    assert os.listdir(tmp_path / "serving") == []


def test_a_version_that_exists_is_not_pushed_again(tmp_path):
    base = tmp_path / "serving"
    model = _model(str(tmp_path / "m"))
    assert component.push_atomically(model, str(base), "200") == str(base / "200")
    assert component.push_atomically(model, str(base), "200") is None
    assert os.listdir(base) == ["200"]


def test_file_uris_are_local_and_other_schemes_are_not():
    assert component.local_path("file:///srv/models/fer") == "/srv/models/fer"
    assert component.local_path("file://localhost/srv/models/fer") == "/srv/models/fer"
    assert component.local_path("file:///srv/my%20models") == "/srv/my models"
    assert component.local_path("file://otherhost/srv/models/fer") is None
    assert component.local_path("file:///srv/run#2") is None and component.local_path("file:///srv/x?y=1") is None
    assert component.local_path("runs/x/serving_model/fer") == "runs/x/serving_model/fer"
    assert component.local_path("gs://bucket/fer") is None


def test_a_version_another_push_made_during_the_copy_wins(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    real_copy = component.io_utils.copy_dir

    def meanwhile(src, dst, *args, **kwargs):  # another push renames its copy into place first
        real_copy(src, dst)
        _model(str(base / "200"), b"the other push's")

    monkeypatch.setattr(component.io_utils, "copy_dir", meanwhile)
    assert component.push_atomically(_model(str(tmp_path / "m")), str(base), "200") is None
    assert os.listdir(base) == ["200"]
    assert open(base / "200" / "variables" / "variables.data-00000-of-00001", "rb").read() == b"the other push's"


def test_a_version_number_another_model_holds_moves_the_push_to_the_next(tmp_path, monkeypatch):
    """Two pipelines pushing in the same second: the second push is served under the next
    number, not recorded as pushed to a folder that holds the other model."""
    base = tmp_path / "serving"
    _model(str(base / "1800000000"), b"the other pipeline's model")
    monkeypatch.setattr(component.time, "time", lambda: 1800000000.5)
    pushed = _run(tmp_path, str(base))
    assert pushed.get_string_custom_property("pushed_destination") == str(base / "1800000001")
    assert pushed.get_string_custom_property("pushed_version") == "1800000001"
    assert sorted(os.listdir(base)) == ["1800000000", "1800000001"]
    assert open(base / "1800000001" / "variables" / "variables.data-00000-of-00001", "rb").read() == b"weights"


def test_lone_lock_files_of_killed_pushes_are_removed_and_held_ones_stay(tmp_path):
    import fcntl

    base = tmp_path / "serving"
    os.makedirs(base)
    killed_after_rename = base / f"{component.STAGING_PREFIX}100-abc{component.LOCK_SUFFIX}"
    killed_after_rename.write_text("")
    starting = base / f"{component.STAGING_PREFIX}200-def{component.LOCK_SUFFIX}"  # a push before its copy
    with open(starting, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert component.remove_unfinished_pushes(str(base)) == []
        assert os.listdir(base) == [starting.name]


def test_a_lock_that_cannot_be_tested_is_logged_and_left(tmp_path, monkeypatch):
    import errno

    base = tmp_path / "serving"
    staging = base / f"{component.STAGING_PREFIX}100-abc"
    os.makedirs(staging)
    (base / (staging.name + component.LOCK_SUFFIX)).write_text("")

    def no_locks(fd, operation):  # an NFS volume without lockd
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(component.fcntl, "flock", no_locks)
    assert component.remove_unfinished_pushes(str(base)) == []
    assert staging.is_dir()


def test_a_lock_file_removed_before_it_was_locked_is_opened_again(tmp_path, monkeypatch):
    """A cleaner may remove a push's lock file between the push's open and its flock: the push
    must then hold a lock on the file the name now points to, not on the removed one."""
    import fcntl

    lock = str(tmp_path / "x.lock")
    real_flock, calls = fcntl.flock, []

    def removed_first(fd, operation):
        calls.append(operation)
        if len(calls) == 1:
            os.remove(lock)
        real_flock(fd, operation)

    monkeypatch.setattr(component.fcntl, "flock", removed_first)
    with component._locked(lock) as held:
        assert held is True and os.path.exists(lock)
        with open(lock) as other:  # the file at the name is the one locked
            try:
                real_flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked_elsewhere = False
            except BlockingIOError:
                locked_elsewhere = True
        assert locked_elsewhere
    assert calls.count(fcntl.LOCK_EX) == 2


def test_the_same_model_pushed_meanwhile_under_that_version_is_reused(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    _model(str(base / "1800000000"))  # another run of the same model, in the same second
    monkeypatch.setattr(component.time, "time", lambda: 1800000000.5)
    monkeypatch.setattr(component, "find_identical_version", lambda *args: None)  # (it came after this check)
    pushed = _run(tmp_path, str(base))
    assert pushed.get_string_custom_property("pushed_destination") == str(base / "1800000000")
    assert os.listdir(base) == ["1800000000"]


def test_the_cleaner_tests_locks_on_a_writable_descriptor_where_it_may(tmp_path, monkeypatch):
    """NFS emulates flock with POSIX locks, which refuse an exclusive lock on a read-only
    descriptor (EBADF): the cleaner opens lock files read-write, and read-only only where it
    may not write them."""
    import errno
    import fcntl

    base = tmp_path / "serving"
    staging = base / f"{component.STAGING_PREFIX}100-abc"
    os.makedirs(staging)
    (base / (staging.name + component.LOCK_SUFFIX)).write_text("")
    real_flock, real_open = fcntl.flock, os.open

    def nfs_flock(fd, operation):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(component.fcntl, "flock", nfs_flock)
    assert component.remove_unfinished_pushes(str(base)) == [str(staging)]

    os.makedirs(staging)
    (base / (staging.name + component.LOCK_SUFFIX)).write_text("")

    def not_ours(path, flags, *args):  # another user's lock file (a root-run container's)
        if flags & os.O_ACCMODE == os.O_RDWR and not flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(component.fcntl, "flock", real_flock)
    monkeypatch.setattr(component.os, "open", not_ours)
    assert component.remove_unfinished_pushes(str(base)) == [str(staging)]


def test_a_filesystem_that_cannot_fsync_a_folder_still_gets_the_push(tmp_path, monkeypatch):
    import errno

    real_fsync = os.fsync

    def files_only(fd):
        import stat

        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(component.os, "fsync", files_only)
    base = tmp_path / "serving"
    assert component.push_atomically(_model(str(tmp_path / "m")), str(base), "200") == str(base / "200")
    assert sorted(os.listdir(base / "200")) == ["saved_model.pb", "variables"]
