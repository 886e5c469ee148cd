import pytest


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """The pipeline compiled with the defaults of `fer-pipeline kubeflow compile`: (path, job)."""
    from kubeflow import runner

    path = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    return str(path), runner.compile_pipeline(str(path))


@pytest.fixture(scope="session")
def compiled_yaml(tmp_path_factory):
    """The same compiled to the bare PipelineSpec YAML (Kubeflow Pipelines): (path, job)."""
    from kubeflow import runner

    path = tmp_path_factory.mktemp("kfp-yaml") / "pipeline.yaml"
    return str(path), runner.compile_pipeline(str(path))
