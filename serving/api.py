"""TF Serving's five calls (Predict, Classify, Regress, GetModelMetadata, GetModelStatus) over
a ModelStore: the same request and response protos, the same error codes and, where TF
Serving's source fixes them, the same messages (predict_util.cc, classifier.cc,
regressor.cc, get_model_status_impl.cc, get_model_metadata_impl.cc).

Transport-free: grpc_server.py hands a Service the protos gRPC decoded; rest.py hands it the
same protos built from JSON (json_tensor.py), except for Predict, whose JSON is decoded
straight into arrays against the signature `predict_target` finds (a TensorProto in between
would only be built to be read back). Every input is checked (contract.py) against the
signature and the server's limits before anything is allocated for it: a TensorProto's
declared shape, not its carried values, decides its size (TF expands a short value list to
the declared shape), so a 43-byte request cannot ask for a 200,000-row batch."""

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     predict_pb2, regression_pb2)

from serving.batching import Batcher, QueueFull
from serving.contract import (DEFAULT_SIGNATURE, ApiError, Limits, check_input, check_input_names, check_rows,
                              signature_not_found)
from serving.model_store import LoadedVersion, ModelStore, StoreError

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"
# signature_constants.h: the keys Classify and Regress signatures use.
CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"


@dataclass(frozen=True)
class PredictTarget:
    """A Predict's version and signature, found once; `inputs` are what its decoder checks
    the request against (input alias -> tf.TensorSpec)."""
    servable: LoadedVersion
    signature_name: str
    function: object
    inputs: Dict[str, tf.TensorSpec]


def _version(model_spec) -> Optional[int]:
    return model_spec.version.value if model_spec.HasField("version") else None


def _signature(servable: LoadedVersion, name: str, method: str, kind: str, limits: Limits):
    """A classify or regress signature, found and checked as TF Serving's classifier.cc and
    regressor.cc do: its method_name only under --enable_signature_method_name_check
    (util.cc's signature_method_check, false by default), then its inputs and outputs as
    PreProcessClassification / PreProcessRegression check them."""
    name = name or DEFAULT_SIGNATURE
    if name not in servable.signature_defs:
        raise ApiError("INVALID_ARGUMENT", f"No signature was found with the name: {name}")
    signature_def = servable.signature_defs[name]
    try:
        if limits.method_name_check and signature_def.method_name != method:
            raise ApiError("INVALID_ARGUMENT", f"Expected {kind} signature method_name to be {method}. "
                                               f"Was: {signature_def.method_name}")
        (_check_classification if kind == "classification" else _check_regression)(signature_def)
    except ApiError as e:  # TF Serving's text whole, then a hint for a Classify that missed its signature
        hint = _classify_hint(servable, name) if kind == "classification" else ""
        raise ApiError(e.code, str(e) + hint) from None
    return name, servable.signatures[name]


def _classify_hint(servable: LoadedVersion, name: str) -> str:
    """An addition to TF Serving's message (its text is kept whole): the signature a Classify
    request without a signature_name most likely meant."""
    names = sorted(n for n, s in servable.signature_defs.items() if s.method_name == CLASSIFY_METHOD and n != name)
    if not names:
        return ""
    return f' (hint: {name} is not a classify signature; this model\'s is "{names[0]}": set signature_name to it)'


def _check_classification(signature_def) -> None:
    """classifier.cc's PreProcessClassification."""
    if len(signature_def.inputs) != 1:
        raise ApiError("INVALID_ARGUMENT", "Expected one input Tensor.")
    if len(signature_def.outputs) not in (1, 2):
        raise ApiError("INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
    if CLASSIFY_INPUTS not in signature_def.inputs:
        raise ApiError("INVALID_ARGUMENT", f"No classification inputs found in SignatureDef: {signature_def}")
    if CLASSIFY_CLASSES not in signature_def.outputs and CLASSIFY_SCORES not in signature_def.outputs:
        raise ApiError("INVALID_ARGUMENT", 'Expected classification signature outputs to contain at least one of '
                                           f'"classes" or "scores". Signature was: {signature_def}')


def _check_regression(signature_def) -> None:
    """regressor.cc's PreProcessRegression."""
    if len(signature_def.inputs) != 1:
        raise ApiError("INVALID_ARGUMENT", "Expected one input Tensor.")
    if len(signature_def.outputs) != 1:
        raise ApiError("INVALID_ARGUMENT", "Expected one output Tensor.")
    if REGRESS_INPUTS not in signature_def.inputs:
        raise ApiError("INVALID_ARGUMENT", f"No regression inputs found in SignatureDef: {signature_def}")
    if REGRESS_OUTPUTS not in signature_def.outputs:
        raise ApiError("INVALID_ARGUMENT", f"No regression outputs found in SignatureDef: {signature_def}")


def input_specs(function) -> Dict[str, tf.TensorSpec]:
    return function.structured_input_signature[1]


_VALUE_FIELDS = {  # TensorProto repeated field per dtype (tensor.proto)
    tf.float16: "half_val", tf.bfloat16: "half_val", tf.float32: "float_val", tf.float64: "double_val",
    tf.int8: "int_val", tf.int16: "int_val", tf.int32: "int_val", tf.uint8: "int_val", tf.uint16: "int_val",
    tf.int64: "int64_val", tf.uint32: "uint32_val", tf.uint64: "uint64_val", tf.bool: "bool_val",
    tf.string: "string_val", tf.complex64: "scomplex_val", tf.complex128: "dcomplex_val",
}


def decode_proto(name: str, proto, spec: tf.TensorSpec, limits: Limits, index: int = 0) -> np.ndarray:
    """A request TensorProto as an array, refused before decoding when its declared dtype,
    shape, rows or size do not fit, or when it carries more values than its shape holds."""
    try:
        dtype = tf.as_dtype(proto.dtype)
    except TypeError:
        raise ApiError("INVALID_ARGUMENT", f"input {name}: unknown dtype enum {proto.dtype}") from None
    if proto.tensor_shape.unknown_rank:
        raise ApiError("INVALID_ARGUMENT", f"input {name}: a request tensor needs a known shape")
    dims = [d.size for d in proto.tensor_shape.dim]
    strings = sum(len(s) for s in proto.string_val) if dtype == tf.string else None
    check_input(name, dtype, dims, spec, limits, index, strings)
    count = math.prod(dims)
    if dtype != tf.string and proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.size:
            raise ApiError("INVALID_ARGUMENT", f"input {name}: tensor_content holds {len(proto.tensor_content)} "
                                               f"bytes, the shape {dims} needs {count * dtype.size}")
    else:
        field = _VALUE_FIELDS.get(dtype)
        if field is None:
            raise ApiError("INVALID_ARGUMENT", f"input {name}: dtype {dtype.name} is not served")
        carried = len(getattr(proto, field)) // (2 if dtype.is_complex else 1)
        if carried > count:
            raise ApiError("INVALID_ARGUMENT", f"input {name}: {carried} values for a shape of {count} elements")
    try:
        return tf.make_ndarray(proto)
    except Exception as e:
        raise ApiError("INVALID_ARGUMENT", f"input {name}: not a valid TensorProto ({e})") from None


def run(function, arrays: Dict[str, np.ndarray], batcher: Optional[Batcher] = None,
        key: tuple = ()) -> Dict[str, np.ndarray]:
    """Runs the signature; with a batcher, joined with concurrent requests for the same key."""
    rows = {len(a) if a.ndim else 1 for a in arrays.values()}
    if len(rows) > 1:
        raise ApiError("INVALID_ARGUMENT", f"inputs have different batch sizes: {sorted(rows)}")
    try:
        if batcher is not None:
            return batcher.run(key, function, arrays)
        return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in arrays.items()}).items()}
    except QueueFull as e:
        raise ApiError("UNAVAILABLE", str(e)) from None
    except tf.errors.OpError as e:  # the model's own error, with its code (INVALID_ARGUMENT for bad values)
        raise ApiError(error_codes_pb2.Code.Name(e.error_code), e.message) from None


def predict_arrays(target: PredictTarget, arrays: Dict[str, np.ndarray], output_filter: Sequence[str] = (),
                   batcher: Optional[Batcher] = None) -> Dict[str, np.ndarray]:
    """A Predict's decoded inputs run (batched with others for the same version and signature
    when there is a batcher), its outputs filtered as the request asks."""
    outputs = run(target.function, arrays, batcher, (target.servable.version, target.signature_name))
    if output_filter:
        for alias in output_filter:
            if alias not in outputs:
                raise ApiError("INVALID_ARGUMENT", f"output tensor alias not found in signature: {alias} Outputs "
                                                   f"expected to be in the set {{{','.join(sorted(outputs))}}}.")
        outputs = {k: v for k, v in outputs.items() if k in output_filter}
    return outputs


def _examples(request_input, name: str, limits: Limits) -> list:
    """The request's examples, each merged with the context; the merged size is checked
    before merging (a 1 MB context times many empty examples would otherwise be built)."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request_input.example_list.examples)
        check_rows(name, len(examples), limits)
        return examples
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        check_rows(name, len(listed.examples), limits)
        size = listed.context.ByteSize() * len(listed.examples) + sum(e.ByteSize() for e in listed.examples)
        if size > limits.max_message_bytes:
            raise ApiError("RESOURCE_EXHAUSTED", f"input {name}: the examples merged with their context take {size} "
                                                 f"bytes, above the limit of {limits.max_message_bytes}")
        merged_examples = []
        for example in listed.examples:
            merged = type(example)()
            merged.CopyFrom(listed.context)
            merged.MergeFrom(example)
            merged_examples.append(merged)
        return merged_examples
    return []


def _run_examples(function, request_input, limits: Limits) -> Dict[str, np.ndarray]:
    specs = input_specs(function)
    if len(specs) != 1:
        raise ApiError("INVALID_ARGUMENT", "Expected one input Tensor.")
    ((input_name, spec),) = specs.items()
    examples = _examples(request_input, input_name, limits)
    if not examples:
        raise ApiError("INVALID_ARGUMENT", "Input is empty.")
    serialized = [e.SerializeToString() for e in examples]
    check_input(input_name, tf.string, [len(serialized)], spec, limits, string_bytes=sum(map(len, serialized)))
    return run(function, {input_name: np.array(serialized, dtype=object)})


class Service:
    """The calls, over one store, with the server's limits and its batcher (--enable_batching;
    None: each Predict runs alone). One per server; gRPC and REST share it."""

    def __init__(self, store: ModelStore, limits: Limits = Limits(), batcher: Optional[Batcher] = None):
        self.store, self.limits, self.batcher = store, limits, batcher

    def servable(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        try:
            return self.store.get(name, version, label or None)
        except StoreError as e:
            raise ApiError(e.code, str(e)) from None

    def _respond(self, message, servable: LoadedVersion, signature_name: str) -> None:
        message.model_spec.name = self.store.model_name
        message.model_spec.version.value = servable.version
        message.model_spec.signature_name = signature_name

    # -- Predict ------------------------------------------------------------------------------
    def predict_target(self, name: str, version: Optional[int], label: Optional[str], signature_name: str,
                       rest: bool = False) -> PredictTarget:
        """The version and signature a Predict runs: the one place its signature is checked.
        `rest`: a missing one answered as TF Serving's REST API answers it."""
        servable = self.servable(name, version, label)
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in servable.signatures or signature_name not in servable.signature_defs:
            raise signature_not_found(signature_name, rest)
        function = servable.signatures[signature_name]
        return PredictTarget(servable, signature_name, function, input_specs(function))

    def predict_arrays(self, target: PredictTarget, arrays: Dict[str, np.ndarray],
                       output_filter: Sequence[str] = ()) -> Dict[str, np.ndarray]:
        return predict_arrays(target, arrays, output_filter, self.batcher)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        target = self.predict_target(spec.name, _version(spec), spec.version_label, spec.signature_name)
        check_input_names(list(request.inputs), target.inputs)
        order = sorted(target.inputs)
        arrays = {name: decode_proto(name, request.inputs[name], target.inputs[name], self.limits, index)
                  for index, name in enumerate(order)}
        outputs = self.predict_arrays(target, arrays, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        self._respond(response, target.servable, target.signature_name)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    # -- Classify, Regress --------------------------------------------------------------------
    def _run_example_signature(self, request, method: str, kind: str):
        """(servable, signature name, outputs) of a Classify or Regress request's signature run on its
        tf.Examples."""
        spec = request.model_spec
        servable = self.servable(spec.name, _version(spec), spec.version_label)
        signature_name, function = _signature(servable, spec.signature_name, method, kind, self.limits)
        return servable, signature_name, _run_examples(function, request.input, self.limits)

    def classify(self, request: classification_pb2.ClassificationRequest):
        servable, signature_name, outputs = self._run_example_signature(request, CLASSIFY_METHOD, "classification")
        scores, classes = outputs.get("scores"), outputs.get("classes")
        if scores is None and classes is None:
            raise ApiError("INVALID_ARGUMENT", "Expected classification signature outputs to contain at least one "
                                               "of {classes, scores}.")
        response = classification_pb2.ClassificationResponse()
        self._respond(response, servable, signature_name)
        rows = len(scores if scores is not None else classes)
        count = (scores if scores is not None else classes).shape[1]
        for i in range(rows):
            classification = response.result.classifications.add()
            for j in range(count):
                entry = classification.classes.add()
                if classes is not None:
                    label = classes[i, j]
                    entry.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
                if scores is not None:
                    entry.score = float(scores[i, j])
        return response

    def regress(self, request: regression_pb2.RegressionRequest):
        servable, signature_name, outputs = self._run_example_signature(request, REGRESS_METHOD, "regression")
        if "outputs" not in outputs:
            raise ApiError("INVALID_ARGUMENT", "No regression outputs found in SignatureDef")
        response = regression_pb2.RegressionResponse()
        self._respond(response, servable, signature_name)
        for value in np.asarray(outputs["outputs"]).reshape(-1):
            response.result.regressions.add().value = float(value)
        return response

    # -- GetModelMetadata, GetModelStatus -----------------------------------------------------
    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        if not request.HasField("model_spec"):
            raise ApiError("INVALID_ARGUMENT", "Missing ModelSpec")
        fields = list(request.metadata_field)
        if not fields:
            raise ApiError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
        for name in fields:
            if name != SIGNATURE_DEF_FIELD:
                raise ApiError("INVALID_ARGUMENT", f"Metadata field {name} is not supported")
        spec = request.model_spec
        servable = self.servable(spec.name, _version(spec), spec.version_label)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():  # all of them, as TF Serving does
            signature_map.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.store.model_name
        response.model_spec.version.value = servable.version
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
        return response

    def status(self, request: get_model_status_pb2.GetModelStatusRequest):
        if not request.HasField("model_spec"):
            raise ApiError("INVALID_ARGUMENT", "Missing ModelSpec")
        spec = request.model_spec
        try:  # a version label is not looked at: TF Serving's GetModelStatus reads name and version only
            found = self.store.statuses(spec.name, _version(spec))
        except StoreError as e:
            raise ApiError(e.code, str(e)) from None
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state in found:
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
            entry.status.error_code = error_codes_pb2.Code.Value(state.error_code)
            entry.status.error_message = state.error_message
        return response
