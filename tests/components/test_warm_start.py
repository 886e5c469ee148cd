"""components/warm_start: --warm-start resolved where the task runs (any tf.io.gfile filesystem)
and copied into a Model artifact, and TFX's cache re-running it only for a new version."""

import filecmp
import os
import shutil

import pytest

from components.warm_start import logic
from models import warm_start


@pytest.fixture(scope="module")
def shipped():
    return warm_start.resolve(warm_start.SHIPPED)


def test_resolves_each_kind_of_warm_start_through_gfile(shipped):
    # ram:// is a filesystem os.path cannot see: resolving it proves the rules go through tf.io.gfile.
    root = f"ram://warm_start_test_{os.getpid()}"
    for version in ("7", "12"):
        logic.copy_tree(shipped, f"{root}/fer/{version}")
    assert logic.resolve(f"{root}/fer") == f"{root}/fer/12"  # a base path: its newest version, by number
    assert logic.resolve(f"{root}/fer/7") == f"{root}/fer/7"  # a SavedModel folder
    staged = logic.stage(f"{root}/fer/", f"{root}/pipeline_root/FerTrainer/model/3")
    assert (staged.saved_model, staged.version) == (f"{root}/fer/12", "12")
    artifact = f"{root}/pipeline_root/FerTrainer/model/3"  # a Model artifact: its Format-Serving/
    assert logic.resolve(artifact) == f"{artifact}/Format-Serving"
    assert logic.version_of(logic.resolve(artifact)) == "3"
    assert logic.resolve(warm_start.SHIPPED) == shipped  # the model packaged with the code
    for bad, words in ((f"{root}/pipeline_root", "no saved_model.pb"), (f"{root}/nope", "no such folder")):
        with pytest.raises(warm_start.WarmStartError) as raised:
            logic.resolve(bad)
        message = str(raised.value)
        assert message.startswith(f"--warm-start {bad}: ") and words in message and "\n" not in message


def test_stage_copies_the_saved_model_into_format_serving(shipped, tmp_path):
    base = tmp_path / "serving_model" / "fer"
    shutil.copytree(shipped, base / "1795896638")
    artifact = tmp_path / "artifact"
    (artifact / "Format-Serving" / "variables").mkdir(parents=True)  # an earlier, failed try's leftovers
    (artifact / "Format-Serving" / "stale.txt").write_text("x")
    staged = logic.stage(str(base), str(artifact))
    assert staged == logic.Staged(str(base), str(base / "1795896638"), "1795896638")
    compared = filecmp.dircmp(shipped, artifact / "Format-Serving")
    assert not (compared.left_only or compared.right_only or compared.diff_files)
    assert not compared.subdirs["variables"].diff_files and compared.subdirs["variables"].common_files


def _model_artifacts(metadata_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    return metadata_store.MetadataStore(config).get_artifacts_by_type("Model")


def test_the_cache_reuses_the_copy_until_a_newer_version_is_pushed(shipped, tmp_path):
    """The local runner pins a base path to its newest version (pin_warm_start), the string
    TFX's cache keys on: the same version reuses the copy (and so the Trainer's cached model),
    a newer one is copied again."""
    from tfx import v1 as tfx

    from components.warm_start.component import WarmStart
    from core import names
    from pipeline.local_runner import pin_warm_start

    base = tmp_path / "serving_model" / "fer"
    shutil.copytree(shipped, base / "7")
    metadata = str(tmp_path / "metadata.sqlite")

    def run():
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="warm", pipeline_root=str(tmp_path / "root"), enable_cache=True,
            components=[WarmStart(source=pin_warm_start(str(base))).with_id("warm_start")],
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata)))
        return _model_artifacts(metadata)

    first = run()
    assert len(first) == 1 and first[0].custom_properties[names.WARM_START_VERSION_PROPERTY].string_value == "7"
    assert [a.id for a in run()] == [first[0].id]  # cached: no second copy
    shutil.copytree(shipped, base / "12")
    models = run()
    assert len(models) == 2
    newest = max(models, key=lambda a: a.id)
    assert newest.custom_properties[names.WARM_START_VERSION_PROPERTY].string_value == "12"
    assert newest.custom_properties[names.WARM_START_SAVED_MODEL_PROPERTY].string_value == str(base / "12")
    assert os.path.isfile(os.path.join(newest.uri, "Format-Serving", "saved_model.pb"))
