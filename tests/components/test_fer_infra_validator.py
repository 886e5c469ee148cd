"""FerInfraValidator: the stock InfraValidator made to find its pod on KFP v2."""

import os

from tfx.components.infra_validator import executor as stock_executor
from tfx.utils import kube_utils

from components.fer_infra_validator import component


def test_namespace_from_kfp_v1_v2_or_the_service_account_file(tmp_path):
    namespace_file = tmp_path / "namespace"
    assert component.kfp_namespace({"KFP_NAMESPACE": "a", "NAMESPACE": "b"}, str(namespace_file)) == "a"
    assert component.kfp_namespace({"NAMESPACE": "b"}, str(namespace_file)) == "b"
    assert component.kfp_namespace({}, str(namespace_file)) is None
    namespace_file.write_text("team-ml\n")
    assert component.kfp_namespace({}, str(namespace_file)) == "team-ml"


def test_executor_sets_kfp_namespace_before_the_stock_executor_runs(monkeypatch):
    seen = {}
    monkeypatch.delenv(kube_utils.KFP_NAMESPACE, raising=False)
    monkeypatch.setenv("NAMESPACE", "kubeflow-user")
    monkeypatch.setattr(stock_executor.Executor, "Do",
                        lambda self, i, o, e: seen.setdefault("ns", os.environ.get(kube_utils.KFP_NAMESPACE)))
    component.Executor().Do({}, {}, {})
    assert seen["ns"] == "kubeflow-user"


def test_serving_and_request_specs():
    spec = component.kubernetes_serving_spec(tag="2.16.1")
    assert spec.WhichOneof("serving_platform") == "kubernetes"
    assert spec.tensorflow_serving.image_name == "tensorflow/serving"
    assert list(spec.tensorflow_serving.tags) == ["2.16.1"] and spec.model_name == "fer"
    request = component.request_spec()
    assert list(request.tensorflow_serving.signature_names) == ["classify"] and request.split_name == "eval"
    assert component.FerInfraValidator.EXECUTOR_SPEC.executor_class is component.Executor
