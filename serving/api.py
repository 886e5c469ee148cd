"""TF Serving's API over a ModelStore: the same request and response protos, the same error
codes (INVALID_ARGUMENT for a wrong signature, input name, dtype or shape; NOT_FOUND for an
unknown model or version). Transport-free: grpc_server.py and rest.py call these."""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     predict_pb2)

from serving.model_store import LoadedVersion, ModelStore, NotFound

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # a grpc.StatusCode name


def _version(model_spec) -> Optional[int]:
    return model_spec.version.value if model_spec.HasField("version") else None


def find_servable(store: ModelStore, model_spec) -> LoadedVersion:
    if model_spec.version_label:
        raise ApiError("INVALID_ARGUMENT", "version labels are not configured on this server")
    try:
        return store.get(model_spec.name, _version(model_spec))
    except NotFound as e:
        raise ApiError("NOT_FOUND", str(e)) from None


def find_signature(servable: LoadedVersion, name: str):
    name = name or DEFAULT_SIGNATURE
    if name not in servable.signatures:
        raise ApiError("INVALID_ARGUMENT", f'Serving signature key "{name}" not found.')
    return name, servable.signatures[name]


def validate_inputs(function, tensors: Dict[str, np.ndarray]) -> Dict[str, tf.Tensor]:
    """Checks names, dtypes and shapes against the signature, as TF Serving does before it
    runs a graph; returns the tensors to call it with."""
    specs = function.structured_input_signature[1]
    unknown = set(tensors) - set(specs)
    if unknown:
        raise ApiError("INVALID_ARGUMENT", f"input tensor alias not found in signature: {', '.join(sorted(unknown))}. "
                                           f"Inputs expected to be in the set {{{', '.join(sorted(specs))}}}.")
    missing = set(specs) - set(tensors)
    if missing:
        raise ApiError("INVALID_ARGUMENT", f"Request inputs do not match required inputs for the signature: "
                                           f"missing {', '.join(sorted(missing))}.")
    result = {}
    for name, spec in specs.items():
        value = tensors[name]
        if tf.as_dtype(value.dtype) != spec.dtype:
            raise ApiError("INVALID_ARGUMENT", f"Expects arg[{name}] to be {spec.dtype.name} but "
                                               f"{tf.as_dtype(value.dtype).name} is provided")
        if not spec.shape.is_compatible_with(value.shape):
            raise ApiError("INVALID_ARGUMENT", f"input {name} has shape {list(value.shape)}, the signature expects "
                                               f"{spec.shape.as_list()}")
        result[name] = tf.constant(value)
    return result


def run(function, tensors: Dict[str, tf.Tensor], batcher=None, key: tuple = ()) -> Dict[str, np.ndarray]:
    """Runs the signature; with a batcher, joined with concurrent requests for the same key."""
    try:
        if batcher is not None:
            return batcher.run(key, function, {k: v.numpy() for k, v in tensors.items()})
        return {k: v.numpy() for k, v in function(**tensors).items()}
    except tf.errors.InvalidArgumentError as e:
        raise ApiError("INVALID_ARGUMENT", e.message) from None


def predict(store: ModelStore, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    servable = find_servable(store, request.model_spec)
    signature_name, function = find_signature(servable, request.model_spec.signature_name)
    arrays = {}
    for name, proto in request.inputs.items():
        try:
            arrays[name] = tf.make_ndarray(proto)
        except Exception as e:
            raise ApiError("INVALID_ARGUMENT", f"input {name}: not a valid TensorProto ({e})") from None
    outputs = run(function, validate_inputs(function, arrays), store.batcher, (servable.version, signature_name))
    if request.output_filter:
        unknown = set(request.output_filter) - set(outputs)
        if unknown:
            raise ApiError("INVALID_ARGUMENT", f"output tensor alias not found in signature: {', '.join(sorted(unknown))}")
        outputs = {k: v for k, v in outputs.items() if k in request.output_filter}
    response = predict_pb2.PredictResponse()
    response.model_spec.name = store.model_name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def classify(store: ModelStore, request: classification_pb2.ClassificationRequest):
    servable = find_servable(store, request.model_spec)
    signature_name, function = find_signature(servable, request.model_spec.signature_name)
    if servable.signature_defs[signature_name].method_name != CLASSIFY_METHOD:
        raise ApiError("INVALID_ARGUMENT", f'Expected classification signature method_name to be {CLASSIFY_METHOD}. '
                                           f'Was: {servable.signature_defs[signature_name].method_name}')
    kind = request.input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request.input.example_list.examples)
    elif kind == "example_list_with_context":
        context = request.input.example_list_with_context.context
        examples = []
        for example in request.input.example_list_with_context.examples:
            merged = type(example)()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            examples.append(merged)
    else:
        raise ApiError("INVALID_ARGUMENT", "Input is empty")
    if not examples:
        raise ApiError("INVALID_ARGUMENT", "Input is empty")
    (input_name,) = function.structured_input_signature[1]
    serialized = np.array([e.SerializeToString() for e in examples], dtype=object)
    outputs = run(function, validate_inputs(function, {input_name: serialized}))
    scores, classes = outputs.get("scores"), outputs.get("classes")
    response = classification_pb2.ClassificationResponse()
    response.model_spec.name = store.model_name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for i in range(len(examples)):
        classification = response.result.classifications.add()
        count = scores.shape[1] if scores is not None else classes.shape[1]
        for j in range(count):
            entry = classification.classes.add()
            if classes is not None:
                entry.label = classes[i, j].decode() if isinstance(classes[i, j], bytes) else str(classes[i, j])
            if scores is not None:
                entry.score = float(scores[i, j])
    return response


def metadata(store: ModelStore, request: get_model_metadata_pb2.GetModelMetadataRequest):
    servable = find_servable(store, request.model_spec)
    fields = list(request.metadata_field)
    if not fields:
        raise ApiError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
    unsupported = [f for f in fields if f != "signature_def"]
    if unsupported:
        raise ApiError("INVALID_ARGUMENT", f"Metadata field(s) not supported: {', '.join(unsupported)}")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in servable.signature_defs.items():
        if not name.startswith("__"):  # internal saved-model signatures are not served
            signature_map.signature_def[name].CopyFrom(signature_def)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = store.model_name
    response.model_spec.version.value = servable.version
    packed = any_pb2.Any()
    packed.Pack(signature_map)
    response.metadata["signature_def"].CopyFrom(packed)
    return response


def status(store: ModelStore, request: get_model_status_pb2.GetModelStatusRequest):
    version = _version(request.model_spec)
    try:
        found = store.statuses(request.model_spec.name, version)
    except NotFound as e:
        raise ApiError("NOT_FOUND", str(e)) from None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state in found:
        entry = response.model_version_status.add()
        entry.version = number
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
    return response
