"""Submits a compiled pipeline (kubeflow/runner.py output) to Kubeflow Pipelines or Vertex AI.

- Kubeflow Pipelines 2.x (open source): the kfp client's create_run_from_pipeline_package
  reads a bare PipelineSpec as YAML, not TFX's PipelineJob JSON, so the inner `pipelineSpec`
  is written out as YAML and the runtime parameters travel beside it (defaults from the
  compiled file, overridden by the caller's).
- Vertex AI Pipelines: google-cloud-aiplatform's PipelineJob reads the PipelineJob JSON as
  it is.
"""

import json
import os
import tempfile
from typing import Any, Dict, Optional, Sequence

import yaml

# KFP parameter types (schema 2.1, with the 2.0 names) -> Python types.
_PARAMETER_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool,
                    "INT": int, "DOUBLE": float}
INFRA_VALIDATOR_TASK = "InfraValidator"


class SubmitError(ValueError):
    """A compiled file or a parameter the submission cannot use; the message says which."""


def load_compiled(path: str) -> Dict[str, Any]:
    """The compiled pipeline as a PipelineJob dict, from either format `kubeflow compile`
    writes: the PipelineJob JSON, or the bare PipelineSpec YAML (its defaults and
    defaultPipelineRoot become the job's runtimeConfig)."""
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        with open(path) as f:
            job = yaml.safe_load(f) if is_yaml else json.load(f)
    except OSError as e:
        raise SubmitError(f"cannot read the compiled pipeline {path}: {e.strerror}") from e
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        kind = "YAML" if is_yaml else "JSON"
        raise SubmitError(f"{path} is not {kind} ({str(e).splitlines()[0]}); compile it with "
                          "`fer-pipeline kubeflow compile`") from e
    if is_yaml and isinstance(job, dict) and "root" in job and "pipelineInfo" in job:
        return _job_of_spec(job)
    if not isinstance(job, dict) or "pipelineSpec" not in job:
        raise SubmitError(f"{path} is neither a PipelineSpec YAML nor a PipelineJob JSON: not a "
                          "`fer-pipeline kubeflow compile` output")
    return job


def _job_of_spec(spec: Dict[str, Any]) -> Dict[str, Any]:
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {"pipelineSpec": spec, "displayName": spec["pipelineInfo"].get("name"),
            "runtimeConfig": {"gcsOutputDirectory": spec.get("defaultPipelineRoot"),
                              "parameterValues": {name: p["defaultValue"] for name, p in parameters.items()
                                                  if "defaultValue" in p}}}


def parameter_types(job: Dict[str, Any]) -> Dict[str, type]:
    parameters = job["pipelineSpec"].get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: _PARAMETER_TYPES[spec.get("parameterType") or spec.get("type")] for name, spec in parameters.items()}


def parse_parameters(pairs: Sequence[str], job: Dict[str, Any]) -> Dict[str, Any]:
    """["epochs=5", "data_root=gs://b/d"] -> {"epochs": 5, "data_root": "gs://b/d"}, typed
    as the compiled pipeline declares them."""
    types = parameter_types(job)
    result: Dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise SubmitError(f"parameter {pair!r} is not NAME=VALUE")
        if name not in types:
            raise SubmitError(f"unknown parameter {name!r}; the pipeline takes: {', '.join(sorted(types))}")
        ptype = types[name]
        try:
            result[name] = (raw.lower() in ("1", "true", "yes")) if ptype is bool else ptype(raw)
        except ValueError:
            raise SubmitError(f"parameter {name}={raw!r} is not a valid {ptype.__name__}") from None
    return result


def runtime_parameters(job: Dict[str, Any], overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The compiled defaults (runtimeConfig), in their declared types, updated by overrides."""
    types = parameter_types(job)
    config = job.get("runtimeConfig", {})
    values = dict(config.get("parameterValues", {}))
    for name, value in config.get("parameters", {}).items():  # schema 2.0: {"intValue": ...}
        values[name] = next(iter(value.values()))
    typed = {name: types[name](value) if name in types else value for name, value in values.items()}
    typed.update(overrides or {})
    return typed


def pipeline_root(job: Dict[str, Any], override: Optional[str] = None) -> Optional[str]:
    return override or job.get("runtimeConfig", {}).get("gcsOutputDirectory")


def write_pipeline_spec_yaml(job: Dict[str, Any], path: str) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)


def submit_kfp(
    job: Dict[str, Any],
    host: str,
    *,
    experiment: str = "fer",
    run_name: Optional[str] = None,
    parameters: Optional[Dict[str, Any]] = None,
    pipeline_root_override: Optional[str] = None,
    namespace: Optional[str] = None,
    service_account: Optional[str] = None,
    enable_caching: Optional[bool] = None,
    existing_token: Optional[str] = None,
) -> str:
    """Creates a run on a KFP 2.x endpoint; returns its run id."""
    import kfp
    import kfp_server_api
    import urllib3

    try:
        client = kfp.Client(host=host, existing_token=existing_token,
                            **({"namespace": namespace} if namespace else {}))
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = os.path.join(tmp, "pipeline.yaml")
            write_pipeline_spec_yaml(job, spec_path)
            result = client.create_run_from_pipeline_package(
                spec_path,
                arguments=runtime_parameters(job, parameters),
                run_name=run_name or job.get("displayName"),
                experiment_name=experiment,
                namespace=namespace,
                pipeline_root=pipeline_root(job, pipeline_root_override),
                enable_caching=enable_caching,
                service_account=service_account,
            )
    except kfp_server_api.ApiException as e:
        raise SubmitError(f"Kubeflow Pipelines at {host} refused the request: HTTP {e.status} {e.reason}: "
                          f"{(e.body or '').strip()[:500]}") from e
    except (TimeoutError, OSError, urllib3.exceptions.HTTPError) as e:  # no answer: MaxRetryError and the like
        reason = getattr(e, "reason", None) or e
        raise SubmitError(f"cannot reach Kubeflow Pipelines at {host} ({type(reason).__name__}): check the URL, "
                          "that the API is reachable from here (e.g. kubectl port-forward -n kubeflow "
                          "svc/ml-pipeline-ui 8080:80, then --host http://localhost:8080) and the auth (--token)") \
            from e
    return result.run_id


def check_vertex_compatible(job: Dict[str, Any]) -> None:
    if INFRA_VALIDATOR_TASK in job["pipelineSpec"].get("root", {}).get("dag", {}).get("tasks", {}):
        raise SubmitError("this pipeline validates the model with TF Serving started on Kubernetes (InfraValidator), "
                          "which Vertex AI Pipelines cannot do: compile it with --no-infra-validation for Vertex")


def vertex_pipeline_job(
    compiled_path: str,
    *,
    project: str,
    region: str,
    run_name: Optional[str] = None,
    parameters: Optional[Dict[str, Any]] = None,
    pipeline_root_override: Optional[str] = None,
    enable_caching: Optional[bool] = None,
    credentials: Any = None,
):
    """The aiplatform.PipelineJob for the compiled file (built locally, nothing sent)."""
    from google.cloud import aiplatform

    job = load_compiled(compiled_path)
    check_vertex_compatible(job)
    return aiplatform.PipelineJob(
        display_name=run_name or job.get("displayName") or "fer",
        template_path=compiled_path,
        pipeline_root=pipeline_root(job, pipeline_root_override),
        parameter_values=runtime_parameters(job, parameters),
        enable_caching=enable_caching,
        project=project,
        location=region,
        credentials=credentials,
    )


def submit_vertex(compiled_path: str, *, service_account: Optional[str] = None, network: Optional[str] = None,
                  **job_args) -> str:
    """Submits to Vertex AI Pipelines (application-default credentials); returns the job's
    resource name."""
    pipeline_job = vertex_pipeline_job(compiled_path, **job_args)
    pipeline_job.submit(service_account=service_account, network=network)
    return pipeline_job.resource_name

