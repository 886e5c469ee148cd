"""Submission: to a local server speaking the KFP v2beta1 API (what the kfp client sends),
and the Vertex AI PipelineJob (built, not sent)."""

import json

import pytest

from cli.main import main
from kubeflow import config, submit
from tests.kubeflow.fake_kfp import FakeKfp


@pytest.fixture(autouse=True)
def _kfp_context(tmp_path, monkeypatch):
    import kfp

    # The kfp client keeps a namespace in ~/.config/kfp/context.json; keep tests off $HOME.
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))


def test_parameters_are_typed_as_the_pipeline_declares(compiled):
    _, job = compiled
    assert submit.parse_parameters(["epochs=5", "learning_rate=0.001", "data_root=gs://b/d"], job) == {
        "epochs": 5, "learning_rate": 0.001, "data_root": "gs://b/d"}
    with pytest.raises(submit.SubmitError, match="not a valid int"):
        submit.parse_parameters(["epochs=five"], job)
    with pytest.raises(submit.SubmitError, match="unknown parameter 'epoch'.*batch_size, data_root, epochs"):
        submit.parse_parameters(["epoch=5"], job)
    with pytest.raises(submit.SubmitError, match="NAME=VALUE"):
        submit.parse_parameters(["epochs"], job)
    assert submit.runtime_parameters(job, {"epochs": 2}) == {
        "data_root": config.DEFAULT_DATA_ROOT, "epochs": 2, "batch_size": 128, "learning_rate": 1e-4}


def test_a_compiled_file_that_is_not_one_is_a_clear_error(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"components": {}}))
    with pytest.raises(submit.SubmitError, match="neither a PipelineSpec YAML nor a PipelineJob JSON"):
        submit.load_compiled(str(tmp_path / "x.json"))
    (tmp_path / "z.yaml").write_text("a: [1,\n")
    with pytest.raises(submit.SubmitError, match="is not YAML"):
        submit.load_compiled(str(tmp_path / "z.yaml"))
    (tmp_path / "y.json").write_text("pipelineSpec: {}")
    with pytest.raises(submit.SubmitError, match="not JSON"):
        submit.load_compiled(str(tmp_path / "y.json"))


def test_kfp_submission_end_to_end(compiled, capsys):
    path, job = compiled
    with FakeKfp() as kfp_server:
        rc = main(["kubeflow", "submit", "--pipeline", path, "--host", kfp_server.url, "--experiment", "fer-ci",
                   "--run-name", "fer smoke", "--param", "epochs=2", "--param", "data_root=gs://b/fer/data",
                   "--pipeline-root", "gs://b/root"])
        assert rc == 0
        assert [r["path"] for r in kfp_server.requests if r["method"] == "POST"] == [
            "/apis/v2beta1/experiments", "/apis/v2beta1/runs"]
        lookup = kfp_server.calls("GET", "/experiments")[0]
        assert json.loads(lookup["query"]["filter"][0])["predicates"][0]["stringValue"] == "fer-ci"
        experiment = kfp_server.experiments[0]
        assert experiment["display_name"] == "fer-ci"
        run = kfp_server.calls("POST", "/runs")[0]["body"]
        assert run["display_name"] == "fer smoke"
        assert run["experiment_id"] == experiment["experiment_id"]
        # The pipeline it received is the compiled pipelineSpec, every task and parameter of it.
        received = run["pipeline_spec"]
        assert received["pipelineInfo"]["name"] == "fer"
        assert set(received["root"]["dag"]["tasks"]) == set(job["pipelineSpec"]["root"]["dag"]["tasks"])
        assert received["deploymentSpec"] == job["pipelineSpec"]["deploymentSpec"]
        assert run["runtime_config"] == {
            "pipeline_root": "gs://b/root",
            "parameters": {"data_root": "gs://b/fer/data", "epochs": 2, "batch_size": 128, "learning_rate": 0.0001},
        }
        assert f"run {kfp_server.runs[0]['run_id']}" in capsys.readouterr().out

        # A second submission joins the existing experiment; the compiled pipeline root is the default.
        run_id = submit.submit_kfp(job, kfp_server.url, experiment="fer-ci")
        assert len(kfp_server.calls("POST", "/experiments")) == 1
        second = kfp_server.calls("POST", "/runs")[1]["body"]
        assert second["experiment_id"] == experiment["experiment_id"] and run_id == kfp_server.runs[1]["run_id"]
        assert second["runtime_config"]["pipeline_root"] == config.DEFAULT_PIPELINE_ROOT
        assert second["runtime_config"]["parameters"]["epochs"] == 100


def test_the_yaml_submits_the_same_run_as_the_json(compiled_yaml, compiled):
    path, _ = compiled_yaml
    job = submit.load_compiled(path)
    _, json_job = compiled
    assert job["pipelineSpec"]["root"] == json_job["pipelineSpec"]["root"]
    assert submit.runtime_parameters(job) == submit.runtime_parameters(json_job)
    assert submit.pipeline_root(job) == submit.pipeline_root(json_job) == config.DEFAULT_PIPELINE_ROOT
    with FakeKfp() as kfp_server:
        assert main(["kubeflow", "submit", "--pipeline", path, "--host", kfp_server.url, "--param", "epochs=3"]) == 0
        run = kfp_server.calls("POST", "/runs")[0]["body"]
        assert run["pipeline_spec"]["root"] == json_job["pipelineSpec"]["root"]
        assert run["runtime_config"]["parameters"]["epochs"] == 3
        assert run["runtime_config"]["pipeline_root"] == config.DEFAULT_PIPELINE_ROOT


def test_an_unreachable_host_is_one_line_with_what_to_check(compiled, capsys):
    from tests.serving.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["kubeflow", "submit", "--pipeline", compiled[0], "--host", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot reach Kubeflow Pipelines at {url}")
    assert "port-forward" in err[0] and "--token" in err[0] and "Traceback" not in err[0]


def test_kfp_refusal_is_reported_with_the_server_reason(compiled, monkeypatch):
    _, job = compiled
    with FakeKfp() as kfp_server:
        monkeypatch.setattr(kfp_server, "_route", lambda *a: (403, {"error": "namespace access denied", "code": 7}))
        with pytest.raises(submit.SubmitError, match="HTTP 403.*namespace access denied"):
            submit.submit_kfp(job, kfp_server.url, namespace="team")


def test_submit_needs_a_target(compiled, capsys):
    assert main(["kubeflow", "submit", "--pipeline", compiled[0]]) == 2
    assert "--host" in capsys.readouterr().err
    assert main(["kubeflow", "submit", "--pipeline", compiled[0], "--vertex"]) == 2
    assert "--project and --region" in capsys.readouterr().err


def test_vertex_pipeline_job_has_the_template_and_parameters(tmp_path):
    from google.auth.credentials import AnonymousCredentials

    from kubeflow import runner

    path = str(tmp_path / "vertex.json")
    runner.compile_pipeline(path, runner.CompileOptions(enable_infra_validation=False, pipeline_root="gs://b/root"))
    job = submit.vertex_pipeline_job(path, project="my-project", region="europe-west4", run_name="fer-vertex",
                                     parameters={"epochs": 3}, credentials=AnonymousCredentials())
    resource = job._gca_resource  # the PipelineJob request that submit() would send
    assert resource.display_name == "fer-vertex"
    assert job.project == "my-project" and job.location == "europe-west4"
    assert resource.runtime_config.gcs_output_directory == "gs://b/root"
    values = resource.runtime_config.parameter_values
    assert values["epochs"] == 3 and values["batch_size"] == 128 and values["data_root"] == config.DEFAULT_DATA_ROOT
    tasks = resource.pipeline_spec["root"]["dag"]["tasks"]
    assert "FerTrainer" in tasks and "InfraValidator" not in tasks


def test_vertex_refuses_a_pipeline_with_infra_validation(compiled):
    with pytest.raises(submit.SubmitError, match="--no-infra-validation"):
        submit.vertex_pipeline_job(compiled[0], project="p", region="europe-west4")
