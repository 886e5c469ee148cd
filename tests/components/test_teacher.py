"""components/teacher: --teacher's SavedModels resolved where the task runs (any tf.io.gfile
filesystem), copied into one Model artifact in the order given, and listed for run_fn."""

import filecmp
import os

import pytest

from components.teacher import logic
from models import warm_start


@pytest.fixture(scope="module")
def shipped():
    return warm_start.resolve(warm_start.SHIPPED)


def test_sources_are_comma_separated_and_none_may_be_empty():
    assert logic.split_sources(" shipped, gs://b/fer ") == ["shipped", "gs://b/fer"]
    for bad in ("", " , ", "a,,b", "a,"):
        with pytest.raises(warm_start.WarmStartError) as raised:
            logic.split_sources(bad)
        assert str(raised.value).startswith("--teacher ") and "separated by commas" in str(raised.value)


def test_each_member_is_resolved_through_gfile_and_staged_in_order(shipped):
    root = f"ram://teacher_test_{os.getpid()}"  # a filesystem os.path cannot see
    for version in ("3", "9"):
        logic.warm_start_logic.copy_tree(shipped, f"{root}/fer/{version}")
    artifact = f"{root}/pipeline_root/teacher/model/5"
    resolved = logic.stage(f"{root}/fer, {root}/fer/3", artifact)
    assert resolved == [f"{root}/fer/9", f"{root}/fer/3"]  # a base path's newest version, then the one named
    assert logic.member_dirs(artifact) == [f"{artifact}/members/00", f"{artifact}/members/01"]


def test_staged_members_are_the_saved_models_byte_for_byte(shipped, tmp_path):
    artifact = tmp_path / "teacher" / "model" / "1"
    assert logic.stage(f"shipped,{shipped}", str(artifact)) == [shipped, shipped]
    for member in logic.member_dirs(str(artifact)):
        comparison = filecmp.dircmp(shipped, member)
        assert not comparison.left_only and not comparison.right_only and not comparison.diff_files


def test_a_source_that_is_no_model_is_one_line_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(warm_start.WarmStartError) as raised:
        logic.resolve(f"shipped,{tmp_path / 'empty'}")
    message = str(raised.value)
    assert message.startswith(f"--teacher {tmp_path / 'empty'}: ") and "no saved_model.pb" in message
    assert "\n" not in message
    with pytest.raises(warm_start.WarmStartError, match="has no members"):
        logic.member_dirs(str(tmp_path / "empty"))
