"""FerPusher: a byte-identical model already in the destination is not pushed again."""

import json
import os

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
