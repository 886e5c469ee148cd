"""FerPusher: a byte-identical model already in the destination is not pushed again, and a
push to a local folder appears whole or not at all."""

import json
import os
import pathlib
import socket

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
    [left] = os.listdir(base)
    assert left.startswith(component.STAGING_PREFIX) and os.listdir(os.path.join(base, left)) == ["variables"]

    pushed = _run(tmp_path, base)
    [version] = os.listdir(base)
    assert version.isdigit() and pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)
    assert sorted(os.listdir(os.path.join(base, version))) == ["saved_model.pb", "variables"]


def test_staging_folders_of_running_pushes_and_other_hosts_stay(tmp_path):
    base = tmp_path / "serving"
    running = base / f"{component.STAGING_PREFIX}100-{socket.gethostname()}-{os.getpid()}"
    elsewhere = base / f"{component.STAGING_PREFIX}100-another-host-1"
    for path in (running, elsewhere):
        os.makedirs(path)
    assert component.remove_unfinished_pushes(str(base)) == []
    assert component.push_atomically(_model(str(tmp_path / "m")), str(base), "200") == str(base / "200")
    assert sorted(os.listdir(base)) == sorted(["200", running.name, elsewhere.name])
    assert component.push_atomically(str(tmp_path / "m"), str(base), "200") is None  # that version exists
