"""serving/: the TF Serving configuration, parsed with TF Serving's config protos (those
tensorflow-serving-api does not ship are built in serving/config_files.py from TF Serving's
.proto field names) and checked for what the deployment relies on."""

import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components.fer_infra_validator.component import DEFAULT_SERVING_IMAGE, DEFAULT_SERVING_TAG
from core import features
from serving.config_files import BatchingParameters, MonitoringConfig

SERVING = Path(__file__).resolve().parents[2] / "serving"
IMAGE = f"{DEFAULT_SERVING_IMAGE}:{DEFAULT_SERVING_TAG}"  # the TF Serving InfraValidator validates with


def _uncommented(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).strip()


def test_models_config():
    config = text_format.Parse((SERVING / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == features.SERVING_MODEL_NAME and model.model_platform == "tensorflow"
    assert model.base_path == f"/models/{features.SERVING_MODEL_NAME}"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_parameters():
    batching = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), BatchingParameters())
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == batching.max_batch_size.value  # TF Serving requires this
    assert 0 < batching.batch_timeout_micros.value <= 10_000 and batching.num_batch_threads.value >= 1


def test_monitoring_config():
    monitoring = text_format.Parse((SERVING / "monitoring.config").read_text(), MonitoringConfig())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/monitoring/")


def test_a_typo_in_a_config_fails_the_parse():
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_sise { value: 32 }", BatchingParameters())


def _flags(args):
    return dict(re.match(r"--([^=]+)=(.*)", a).groups() for a in args)


def test_docker_compose_runs_tf_serving_on_the_pushed_model():
    service = yaml.safe_load((SERVING / "docker-compose.yml").read_text())["services"]["tfserving"]
    assert service["image"] == IMAGE and service["entrypoint"] == ["tensorflow_model_server"]
    assert {"8500:8500", "8501:8501"} <= set(service["ports"])
    flags = _flags(service["command"])
    assert (flags["port"], flags["rest_api_port"], flags["enable_batching"]) == ("8500", "8501", "true")
    mounts = {}
    for volume in service["volumes"]:  # SOURCE:TARGET:ro, SOURCE may be ${VAR:-default}
        source, target, mode = volume.rsplit(":", 2)
        assert mode == "ro"
        mounts[target] = source
    for flag, name in (("model_config_file", "models.config"), ("batching_parameters_file", "batching_parameters.txt"),
                       ("monitoring_config_file", "monitoring.config")):
        assert flags[flag] == f"/config/{name}" and mounts[f"/config/{name}"] == f"./{name}"
        assert (SERVING / name).exists()
    assert "/models/fer" in mounts and "serving_model/fer" in mounts["/models/fer"]


def test_kubernetes_manifests():
    deployment = yaml.safe_load((SERVING / "k8s" / "deployment.yaml").read_text())
    service = yaml.safe_load((SERVING / "k8s" / "service.yaml").read_text())
    configmap = yaml.safe_load((SERVING / "k8s" / "configmap.yaml").read_text())
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == f"/v1/models/{features.SERVING_MODEL_NAME}/metadata" and probe["port"] == "http"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    flags = _flags(container["args"])
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/config"]]["configMap"]["name"] == configmap["metadata"]["name"]
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        name = flags[flag].split("/config/")[1]
        # The ConfigMap carries the same files as serving/ (comments aside).
        assert _uncommented(configmap["data"][name]) == _uncommented((SERVING / name).read_text()), name
    assert "/models" in mounts


def test_monitoring_config_lists_exactly_what_this_server_exports(tmp_path):
    """The config's comment promises no metric serving/metrics.py does not export (batching,
    load times), and leaves none out."""
    from serving.metrics import Metrics
    from serving.model_store import ModelStore

    text = (SERVING / "monitoring.config").read_text()
    listed = set(re.findall(r"^#\s{2,}([:\w]+)\s", text, re.MULTILINE))
    metrics = Metrics("fer")
    metrics.record("predict", "REST", "OK", 0.001)
    metrics.version_loaded(ModelStore("fer", str(tmp_path)), str(tmp_path / "1"), False)
    exported = {family.name for family in metrics.registry.collect()}
    assert listed == exported
