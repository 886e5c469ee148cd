"""kubeflow/flink/flink-beam.yaml, the Flink-on-Kubernetes setup for the Beam stages, agrees
with what the pipeline runs: the SDK worker pool is this project's `beam-workers` from the
pipeline image, the Beam job server has the pipeline's Beam version and Flink's, and the
docs/beam.md's Flink arguments reach the services the manifest defines. (No Kubernetes here: this
checks the manifest's structure, not a deployment.)"""

from pathlib import Path

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from cli.main import build_parser
from kubeflow import config
from tests.kubeflow.test_beam_args_doc import documented_sets

MANIFEST = Path(__file__).resolve().parents[2] / "kubeflow" / "flink" / "flink-beam.yaml"


@pytest.fixture(scope="module")
def docs():
    found = {}
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _containers(deployment):
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def _ports(service):
    return {p["port"] for p in service["spec"]["ports"]}


def test_every_service_selects_its_deployment(docs):
    services = [doc for (kind, _), doc in docs.items() if kind == "Service"]
    assert {s["metadata"]["name"] for s in services} == {"flink-jobmanager", "beam-job-server"}
    for service in services:
        pods = [d for (kind, _), d in docs.items() if kind == "Deployment"
                and service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(pods) == 1, service["metadata"]["name"]
        exposed = {p["containerPort"] for c in _containers(pods[0]).values() for p in c.get("ports", [])}
        assert _ports(service) <= exposed


def test_worker_pool_sidecar_is_this_projects_pool_in_the_pipeline_image(docs):
    containers = _containers(docs[("Deployment", "flink-taskmanager")])
    assert set(containers) == {"taskmanager", "beam-worker-pool"}
    pool = containers["beam-worker-pool"]
    assert pool["image"] == config.DEFAULT_IMAGE
    assert pool["command"] == ["fer-pipeline", "beam-workers"]
    args = build_parser().parse_args(["beam-workers", *pool["args"]])
    assert args.port == 50000 and args.workers >= 1
    assert {p["containerPort"] for p in pool["ports"]} == {args.port}


def test_job_server_matches_the_pipelines_beam_and_the_clusters_flink(docs):
    server = _containers(docs[("Deployment", "beam-job-server")])["job-server"]
    image, tag = server["image"].rsplit(":", 1)
    assert tag == apache_beam.__version__  # SDK and runner of one Beam release
    flink = _containers(docs[("Deployment", "flink-taskmanager")])["taskmanager"]["image"]
    assert image == f"apache/beam_flink{flink.split(':')[1].split('-')[0]}_job_server"
    assert _containers(docs[("Deployment", "flink-jobmanager")])["jobmanager"]["image"] == flink
    assert "--flink-master=flink-jobmanager:8081" in server["args"]
    assert 8081 in _ports(docs[("Service", "flink-jobmanager")])
    conf = yaml.safe_load(docs[("ConfigMap", "flink-config")]["data"]["flink-conf.yaml"])
    assert conf["jobmanager.rpc.address"] == "flink-jobmanager"


def test_readmes_flink_arguments_reach_the_manifests_services(docs):
    options = PipelineOptions(documented_sets()["Flink"]).get_all_options()
    assert options["environment_type"] == "EXTERNAL"
    host, port = options["job_endpoint"].split(":")
    assert host == "beam-job-server" and int(port) in _ports(docs[("Service", "beam-job-server")])
    host, port = options["artifact_endpoint"].split(":")
    assert host == "beam-job-server" and int(port) in _ports(docs[("Service", "beam-job-server")])
    pool = _containers(docs[("Deployment", "flink-taskmanager")])["beam-worker-pool"]
    assert options["environment_config"] == f"localhost:{pool['ports'][0]['containerPort']}"
