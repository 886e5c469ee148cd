"""FerInfraValidator: TFX's InfraValidator, runnable on Kubeflow Pipelines v2.

Two things stop the stock component there:
- TFX's KubeflowV2DagRunner refuses any `InfraValidator` instance ("not supported"): the
  component's Kubernetes runner was written for the KFP v1 runner. So this is a component of
  its own with the InfraValidator's spec (same inputs, parameters and `blessing` output) and
  executor, not a subclass.
- The Kubernetes model-server runner finds its own pod through KFP_POD_NAME and
  KFP_NAMESPACE, the names the KFP v1 runner set. The KFP v2 backend (Argo) sets KFP_POD_NAME
  and NAMESPACE instead, so the stock executor stops with "should be running inside KFP".
  This executor fills in KFP_NAMESPACE from NAMESPACE, or from the service-account namespace
  file every pod has, then hands over to the stock executor. The executor container is
  named "main" under Argo in both KFP versions, which the runner also relies on.
On Vertex AI Pipelines there is no Kubernetes API to start TF Serving in: compile without
infra validation for Vertex.
"""

import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.infra_validator import executor as infra_validator_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import infra_validator_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import kube_utils

from core import features

SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
from components.fer_infra_validator.defaults import DEFAULT_SERVING_IMAGE, DEFAULT_SERVING_TAG  # noqa: E402


def kfp_namespace(environ: Dict[str, str], namespace_file: str = SERVICE_ACCOUNT_NAMESPACE_FILE) -> Optional[str]:
    """The namespace this pod runs in, from what KFP v1, KFP v2 or Kubernetes provide."""
    for name in (kube_utils.KFP_NAMESPACE, "NAMESPACE"):
        if environ.get(name):
            return environ[name]
    if os.path.exists(namespace_file):
        with open(namespace_file) as f:
            return f.read().strip() or None
    return None


class Executor(infra_validator_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        namespace = kfp_namespace(dict(os.environ))
        if namespace and not os.environ.get(kube_utils.KFP_NAMESPACE):
            os.environ[kube_utils.KFP_NAMESPACE] = namespace
        super().Do(input_dict, output_dict, exec_properties)


class FerInfraValidator(base_component.BaseComponent):
    SPEC_CLASS = standard_component_specs.InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, serving_spec: infra_validator_pb2.ServingSpec,
                 examples: Optional[types.BaseChannel] = None,
                 request_spec: Optional[infra_validator_pb2.RequestSpec] = None,
                 validation_spec: Optional[infra_validator_pb2.ValidationSpec] = None):
        super().__init__(spec=standard_component_specs.InfraValidatorSpec(
            model=model,
            examples=examples,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            serving_spec=serving_spec,
            validation_spec=validation_spec,
            request_spec=request_spec,
        ))


def kubernetes_serving_spec(image: str = DEFAULT_SERVING_IMAGE, tag: str = DEFAULT_SERVING_TAG,
                            service_account: str = "") -> infra_validator_pb2.ServingSpec:
    """TF Serving started as a pod next to the validator's (the Kubeflow variant)."""
    return infra_validator_pb2.ServingSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServing(image_name=image, tags=[tag]),
        kubernetes=infra_validator_pb2.KubernetesConfig(service_account_name=service_account),
        model_name=features.SERVING_MODEL_NAME,
    )


def request_spec(num_examples: int = 10) -> infra_validator_pb2.RequestSpec:
    """Classify requests built from raw eval examples: the tf.Example signature is the one
    TFX's request builder can fill (serving_default takes decoded images)."""
    return infra_validator_pb2.RequestSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(
            signature_names=[features.EXAMPLES_SIGNATURE]),
        split_name=features.EVAL_SPLIT,
        num_examples=num_examples,
    )


VALIDATION_SPEC = infra_validator_pb2.ValidationSpec(max_loading_time_seconds=300, num_tries=3)
