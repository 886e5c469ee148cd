"""The files `tensorflow_model_server` reads, read the same way here: --model_config_file
(ModelServerConfig), --batching_parameters_file (BatchingParameters) and
--monitoring_config_file (MonitoringConfig), all text protos. tensorflow-serving-api ships
ModelServerConfig but not the other two, so those are built here from TF Serving's .proto
field names and numbers (session_bundle_config.proto, monitoring_config.proto): a typo in a
file fails the parse here as it does in TF Serving. TF-free."""

import os
from dataclasses import dataclass, field
from typing import Dict, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

_T = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _T.LABEL_OPTIONAL, _T.LABEL_REPEATED
_PROTOS = {  # message -> [(field, number, type or message type name, label)]
    "BatchingParameters": [
        ("max_batch_size", 1, ".google.protobuf.Int64Value", _OPTIONAL),
        ("batch_timeout_micros", 2, ".google.protobuf.Int64Value", _OPTIONAL),
        ("max_enqueued_batches", 3, ".google.protobuf.Int64Value", _OPTIONAL),
        ("num_batch_threads", 4, ".google.protobuf.Int64Value", _OPTIONAL),
        ("thread_pool_name", 5, ".google.protobuf.StringValue", _OPTIONAL),
        ("allowed_batch_sizes", 6, _T.TYPE_INT64, _REPEATED),
        ("pad_variable_length_inputs", 7, _T.TYPE_BOOL, _OPTIONAL),
        ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue", _OPTIONAL),
        ("max_execution_batch_size", 9, ".google.protobuf.Int64Value", _OPTIONAL),
    ],
    "PrometheusConfig": [("enable", 1, _T.TYPE_BOOL, _OPTIONAL), ("path", 2, _T.TYPE_STRING, _OPTIONAL)],
    "MonitoringConfig": [("prometheus_config", 1, ".tensorflow.serving.PrometheusConfig", _OPTIONAL)],
}


def _message_classes():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name="fer_tf_serving_configs.proto", package="tensorflow.serving",
                                              syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    for name, fields in _PROTOS.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label in fields:
            spec = message.field.add(name=field_name, number=number, label=label)
            if isinstance(kind, str):
                spec.type, spec.type_name = _T.TYPE_MESSAGE, kind
            else:
                spec.type = kind
    pool.Add(file)
    factory = message_factory.MessageFactory(pool)
    return {name: factory.GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}")) for name in _PROTOS}


_CLASSES = _message_classes()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
ModelServerConfig = model_server_config_pb2.ModelServerConfig

# TF Serving's defaults where a file leaves a field out (BatchingSessionOptions,
# PrometheusExporter::kPrometheusPath).
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and what is wrong."""


def parse(path: str, message_class):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as e:
        raise ConfigError(f"{path}: not a {message_class.DESCRIPTOR.name} text proto ({e})") from None


@dataclass(frozen=True)
class ModelConfig:
    """The one model this server serves, from --model_name/--model_base_path or a config file."""
    name: str
    base_path: str
    version_labels: Dict[str, int] = field(default_factory=dict)


def read_model_config(path: str) -> ModelConfig:
    """One model with the latest-version policy serving one version: what serving/models.config
    holds and what this server implements; anything else is refused by name."""
    config = parse(path, ModelServerConfig)
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: expected a model_config_list")
    models = list(config.model_config_list.config)
    if len(models) != 1:
        raise ConfigError(f"{path}: lists {len(models)} models; this server serves exactly one")
    (model,) = models
    if not model.name or not model.base_path:
        raise ConfigError(f"{path}: the model needs a name and a base_path")
    if model.model_platform not in ("", "tensorflow"):
        raise ConfigError(f"{path}: model_platform {model.model_platform!r}; only 'tensorflow' is served")
    policy = model.model_version_policy.WhichOneof("policy_choice")
    if policy not in (None, "latest") or (policy == "latest" and model.model_version_policy.latest.num_versions > 1):
        raise ConfigError(f"{path}: model_version_policy {policy}; this server serves the latest version only "
                          "(latest {{ num_versions: 1 }})")
    base_path = model.base_path if os.path.isabs(model.base_path) else os.path.join(os.path.dirname(path),
                                                                                      model.base_path)
    return ModelConfig(model.name, base_path, dict(model.version_labels))


@dataclass(frozen=True)
class Batching:
    max_batch_size: int
    batch_timeout_s: float
    max_enqueued_batches: int
    num_batch_threads: int


def read_batching(path: Optional[str], defaults: Batching) -> Batching:
    if not path:
        return defaults
    params = parse(path, BatchingParameters)

    def value(name, default):
        return getattr(params, name).value if params.HasField(name) else default

    batching = Batching(value("max_batch_size", defaults.max_batch_size),
                        value("batch_timeout_micros", defaults.batch_timeout_s * 1e6) / 1e6,
                        value("max_enqueued_batches", defaults.max_enqueued_batches),
                        value("num_batch_threads", defaults.num_batch_threads))
    if batching.max_batch_size < 1 or batching.max_enqueued_batches < 1 or batching.batch_timeout_s < 0:
        raise ConfigError(f"{path}: max_batch_size and max_enqueued_batches must be >= 1 and "
                          "batch_timeout_micros >= 0")
    return batching


def read_prometheus_path(path: Optional[str]) -> Optional[str]:
    """The path to serve metrics at, or None when the file is absent or leaves them off."""
    if not path:
        return None
    prometheus = parse(path, MonitoringConfig).prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_PROMETHEUS_PATH
