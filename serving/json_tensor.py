"""TF Serving's JSON encoding of requests and responses (tensorflow_serving/util/json_tensor.cc):
the row ("instances") and columnar ("inputs") Predict formats, Classify/Regress "examples" with
an optional "context", {"b64": ...} binary strings, and floats written as TF Serving writes
them (the shortest text that reads back as the same float32, a ".0" on whole numbers). The
error messages are json_tensor.cc's.

The shape a JSON value declares is read from its first elements and checked against the
signature and the server's limits before the value is turned into an array."""

import base64
import binascii
import json
import math
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2, feature_pb2

from serving.contract import ApiError, Limits, check_input, check_rows, dtype_name

ROW, COLUMNAR = "row", "columnar"
_MAX_DEBUG_CHARS = 256  # json_tensor.cc's kMaxJsonDebugStringBytes
_MAX_RANK = 32  # numpy's and TF's practical bound; deeper lists are refused before any walk
_B64_PREFIX_CHARS = 16  # a {"b64": ...} payload in an error message: its first characters only


def _debug(value: Any) -> str:
    """The start of a value's JSON text, as json_tensor.cc's JsonValueToDebugString: written
    piece by piece and stopped at the bound, so a 16 MB or deeply nested value costs nothing.
    A {"b64": ...} payload is cut to a short prefix and its length (an image is no use to
    read in an error message, and TF Serving's 256 bytes would echo a short one whole)."""
    parts: List[str] = []
    budget = [_MAX_DEBUG_CHARS]

    def emit(text):
        parts.append(text[:budget[0]])
        budget[0] -= len(text)

    def walk(item, depth):
        if budget[0] <= 0:
            return
        if depth > _MAX_RANK:
            emit("...")
        elif _is_b64(item) and len(item["b64"]) > _B64_PREFIX_CHARS:
            emit('{"b64":' + json.dumps(item["b64"][:_B64_PREFIX_CHARS] + f"... ({len(item['b64'])} chars)") + "}")
        elif isinstance(item, list):
            emit("[")
            for i, element in enumerate(item):
                if budget[0] <= 0:
                    return
                if i:
                    emit(",")
                walk(element, depth + 1)
            emit("]")
        elif isinstance(item, dict):
            emit("{")
            for i, (key, element) in enumerate(item.items()):
                if budget[0] <= 0:
                    return
                emit(("," if i else "") + json.dumps(key) + ":")
                walk(element, depth + 1)
            emit("}")
        else:
            emit(json.dumps(item))

    walk(value, 0)
    return "".join(parts)


def _type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def parse(body: bytes) -> dict:
    """json_tensor.cc's ParseJson: the document must be a JSON object."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _invalid("JSON Parse error: nested too deeply") from None
    except UnicodeDecodeError as e:
        raise _invalid(f"JSON Parse error: Invalid encoding in string. at offset: {e.start}") from None
    except json.JSONDecodeError as e:
        raise _invalid(f"JSON Parse error: Invalid value. at offset: {e.pos} ({e.msg})") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise _invalid(f"JSON Value: {_debug(doc)} not formatted correctly. 'signature_name' key must be a string "
                       "value.")
    return name


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value: dict) -> bytes:
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


def _dense_shape(value: Any) -> List[int]:
    """json_tensor.cc's GetDenseTensorShape: the sizes of the first elements, level by level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > _MAX_RANK:
            raise _invalid(f"Encountered list at unexpected level: {len(shape)} expected < {_MAX_RANK}")
        if not value:
            break
        value = value[0]
    return shape


def _leaves(value: Any, level: int, rank: int, shape: List[int], out: List[Any]) -> None:
    """json_tensor.cc's FillTensorProto walk, for the error message only (the array is built by
    numpy); bounded by the shape check that came before it."""
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                           f"Expected at level: {rank}")
        out.append(value)
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                       f"{shape[level]}")
    for item in value:
        _leaves(item, level + 1, rank, shape, out)


def _type_error(value: Any, dtype: tf.DType) -> ApiError:
    return _invalid(f"JSON Value: {_debug(value)} Type: {_type(value)} is not of expected type: {dtype_name(dtype)}")


def _accepts(value: Any, dtype: tf.DType) -> bool:
    """json_tensor.cc's AddValueToTensor type rules, plus the dtype's range (TF Serving takes any
    int32 for a uint8 and wraps it; a value that does not fit is refused here)."""
    if isinstance(value, bool):
        return dtype == tf.bool
    if dtype.is_floating:  # an integer too large for a double is a parse error in TF Serving's rapidjson
        return isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**1023)
    if dtype.is_integer:
        return isinstance(value, int) and dtype.min <= value <= dtype.max
    if dtype == tf.string:
        return isinstance(value, str) or _is_b64(value)
    return False


def _convert(value: Any, dtype: tf.DType) -> np.ndarray:
    """A JSON value as an array of `dtype`, or json_tensor.cc's error for a ragged list or a
    value of the wrong type. Bounded by the body: no value here is larger than its JSON text
    (a few bytes an element) times the dtype's size."""
    inner = _dense_shape(value)
    if dtype == tf.string:
        leaves: List[Any] = []
        _leaves(value, 0, len(inner), inner, leaves)
        for leaf in leaves:
            if not _accepts(leaf, dtype):
                raise _type_error(leaf, dtype)
        data = [_b64decode(v) if isinstance(v, dict) else v.encode("utf-8") for v in leaves]
        return np.array(data, dtype=object).reshape(inner)
    try:
        array = np.array(value)
        regular = array.shape == tuple(inner) and array.dtype.kind in ("b" if dtype == tf.bool else "iuf")
    except (ValueError, TypeError, OverflowError):
        regular = False
    if (not regular or (dtype.is_integer and array.dtype.kind == "f")
            or (dtype.is_integer and array.size and (array.min() < dtype.min or array.max() > dtype.max))):
        leaves = []
        _leaves(value, 0, len(inner), inner, leaves)  # raises the ragged-list message
        for leaf in leaves:
            if not _accepts(leaf, dtype):
                raise _type_error(leaf, dtype)
        array = np.array(leaves).reshape(inner)
    return array.astype(dtype.as_numpy_dtype)


def to_array(value: Any, name: str, spec: tf.TensorSpec, limits: Limits, index: int = 0) -> np.ndarray:
    """One input's JSON value, converted and then checked against the signature and limits."""
    array = _convert(value, spec.dtype)
    strings = sum(map(len, array.reshape(-1))) if spec.dtype == tf.string else None
    check_input(name, spec.dtype, list(array.shape), spec, limits, index, strings)
    return array


def _column(items: list, name: str, spec: tf.TensorSpec, limits: Limits, index: int, keyed: bool) -> np.ndarray:
    """The instances' values of one input joined along a new first dimension; on failure,
    json_tensor.cc's error for the first instance that fails, as its AddInstanceItem finds it."""
    check_rows(name, len(items), limits)  # refused before any element is converted
    try:
        return to_array(items, name, spec, limits, index)
    except ApiError as e:
        if e.code != "INVALID_ARGUMENT" or not items:
            raise
        first = None
        for i, item in enumerate(items):
            where = f"Failed to process element: {i}" + (f" key: {name}" if keyed else "") + " of 'instances' list."
            try:
                array = _convert(item, spec.dtype)
            except ApiError as item_error:
                raise _invalid(f"{where} Error: INVALID_ARGUMENT: {item_error}") from None
            if first is None:
                first = array
            elif array.size != first.size:
                raise _invalid(f"{where} Error: INVALID_ARGUMENT: Expecting tensor size: {first.size} but got: "
                               f"{array.size}") from None
            elif array.shape != first.shape:
                raise _invalid(f"{where} Error: INVALID_ARGUMENT: Expecting shape "
                               f"[{','.join(map(str, first.shape))}] but got: "
                               f"[{','.join(map(str, array.shape))}]") from None
        raise  # every instance converts alone: the error is the signature's (shape, rows, size)


def predict_inputs(doc: dict, specs: Dict[str, tf.TensorSpec], limits: Limits) -> Tuple[Dict[str, np.ndarray], str]:
    """json_tensor.cc's FillPredictRequestFromJson: the inputs and the format to answer in."""
    if not specs:
        raise _invalid(f"Failed to get input map for signature: {signature_name(doc) or 'DEFAULT'}")
    order = sorted(specs)
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise _invalid(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of 'inputs' or "
                       "'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _invalid(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise _invalid(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        return _from_instances(instances, specs, order, limits), ROW
    if has_inputs:
        inputs = doc["inputs"]
        if not isinstance(inputs, dict) or _is_b64(inputs):
            if len(specs) > 1:
                raise _invalid("inputs is a plain value/list, but expecting an object as multiple input tensors "
                               "required as per tensorinfo_map")
            return {order[0]: to_array(inputs, order[0], specs[order[0]], limits)}, COLUMNAR
        arrays = {}
        for index, name in enumerate(order):
            if name not in inputs:
                raise _invalid(f"Missing named input: {name} in 'inputs' object.")
            arrays[name] = to_array(inputs[name], name, specs[name], limits, index)
        return arrays, COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, specs, order, limits) -> Dict[str, np.ndarray]:
    def is_object(value):
        return isinstance(value, dict) and not _is_b64(value)

    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple input tensors "
                       "required as per tensorinfo_map")
    if not is_object(instances[0]):
        for i, item in enumerate(instances):
            if is_object(item):
                raise _invalid(f"Expecting value/list but got object at item {i} of input list")
        name = order[0]
        return {name: _column(instances, name, specs[name], limits, 0, keyed=False)}
    columns: Dict[str, list] = {name: [] for name in order}
    for i, item in enumerate(instances):
        if not is_object(item):
            raise _invalid(f"Expecting object but got list at item {i} of input list")
        for key in item:
            if key not in specs:
                raise _invalid(f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                               f"INVALID_ARGUMENT: JSON object: does not have named input: {key}")
        if set(item) != set(specs):
            raise _invalid(f"Failed to process element: {i} of 'instances' list. JSON object: {_debug(item)} keys "
                           f"must be equal to: {','.join(order)}")
        for key, value in item.items():
            columns[key].append(value)
    return {name: _column(columns[name], name, specs[name], limits, index, keyed=True)
            for index, name in enumerate(order)}


# -- responses --------------------------------------------------------------------------------
def _float_text(value: float, digits: int, as_float: Callable[[str], float]) -> str:
    """json_tensor.cc's WriteDecimal."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = "%g" % value
    if as_float(text) != value:
        text = "%.*g" % (digits, value)
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _leaf_texts(array: np.ndarray, as_bytes: bool) -> List[str]:
    flat = array.reshape(-1)
    if array.dtype == np.float32:
        return [_float_text(float(v), 9, lambda s: float(np.float32(s))) for v in flat]
    if array.dtype.kind == "f":
        return [_float_text(float(v), 17, float) for v in flat]
    if array.dtype.kind == "b":
        return ["true" if v else "false" for v in flat]
    if array.dtype.kind in "iu":
        return [str(int(v)) for v in flat]
    texts = []
    for v in flat:
        data = v if isinstance(v, bytes) else str(v).encode()
        texts.append(json.dumps({"b64": base64.b64encode(data).decode()}) if as_bytes
                     else json.dumps(data.decode("utf-8", "replace")))
    return texts


def _nest(texts: List[str], shape: Tuple[int, ...]) -> str:
    if not shape:
        return texts[0]
    if len(shape) == 1:
        return "[" + ",".join(texts) + "]"
    step = len(texts) // shape[0] if shape[0] else 0
    return "[" + ",".join(_nest(texts[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def tensor_json(name: str, array: np.ndarray) -> str:
    """One tensor's JSON text; strings whose name ends in _bytes as {"b64": ...}, as TF Serving."""
    return _nest(_leaf_texts(array, name.endswith("_bytes")), array.shape)


def predict_response(outputs: Dict[str, np.ndarray], form: str) -> str:
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if form == COLUMNAR:
        if len(names) == 1:
            return '{"outputs": ' + tensor_json(names[0], outputs[names[0]]) + "}"
        return '{"outputs": {' + ",".join(f"{json.dumps(n)}: {tensor_json(n, outputs[n])}" for n in names) + "}}"
    rows = {len(outputs[n]) if outputs[n].ndim else -1 for n in names}
    if -1 in rows or len(rows) != 1:
        raise _invalid("Tensor outputs have inconsistent batch sizes")
    (count,) = rows
    per_row = {n: [tensor_json(n, outputs[n][i]) for i in range(count)] for n in names}
    if len(names) == 1:
        items = per_row[names[0]]
    else:
        items = ["{" + ",".join(f"{json.dumps(n)}: {per_row[n][i]}" for n in names) + "}" for i in range(count)]
    return '{"predictions": [' + ",".join(items) + "]}"


def classification_response(classifications) -> str:
    if not classifications:
        raise _invalid("Cannot convert empty ClassificationResults to JSON")
    results = []
    for classification in classifications:
        pairs = [f"[{json.dumps(c.label)}, {_float_text(c.score, 9, lambda s: float(np.float32(s)))}]"
                 for c in classification.classes]
        results.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ",".join(results) + "]}"


def regression_response(regressions) -> str:
    if not regressions:
        raise _invalid("Cannot convert empty RegressionResults to JSON")
    values = [_float_text(r.value, 9, lambda s: float(np.float32(s))) for r in regressions]
    return '{"results": [' + ",".join(values) + "]}"


def error_response(message: str) -> str:
    return json.dumps({"error": message})


# -- classify / regress requests --------------------------------------------------------------
def _feature_kind_error(name: str, feature: feature_pb2.Feature) -> ApiError:
    kind = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(feature.WhichOneof("kind"),
                                                                                    "UNKNOWN")
    return _invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    """json_tensor.cc's AddValueToFeature."""
    def kind_is(kind):
        return feature.WhichOneof("kind") in (None, kind)

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise _invalid(f"Feature: {name} has element with unexpected JSON type: {_type(value)}")
    if isinstance(value, bool):
        if not kind_is("int64_list"):
            raise _feature_kind_error(name, feature)
        feature.int64_list.value.append(int(value))
    elif isinstance(value, dict):
        if not kind_is("bytes_list"):
            raise _feature_kind_error(name, feature)
        feature.bytes_list.value.append(_b64decode(value))
    elif isinstance(value, str):
        if not kind_is("bytes_list"):
            raise _feature_kind_error(name, feature)
        feature.bytes_list.value.append(value.encode("utf-8"))
    elif isinstance(value, float):
        if not kind_is("float_list"):
            raise _feature_kind_error(name, feature)
        feature.float_list.value.append(value)
    else:
        if not kind_is("int64_list"):
            raise _feature_kind_error(name, feature)
        if not -2**63 <= value < 2**63:
            raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)


def _example(value: Any, example: example_pb2.Example) -> None:
    if not isinstance(value, dict):
        raise _invalid(f"Example must be JSON object but got JSON {_type(value)}")
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in (content if isinstance(content, list) else [content]):
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


def fill_examples(doc: dict, request) -> None:
    """json_tensor.cc's FillClassifyRegressRequestFromJson into a Classification- or
    RegressionRequest (signature_name already set)."""
    target = request.input
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], target.example_list_with_context.context)
    if "examples" not in doc:
        raise _invalid(f"JSON Value: {_debug(doc)} When method is classify, key 'examples' is expected and was not "
                       "found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _invalid(f"JSON Value: {_debug(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise _invalid(f"JSON Value: {_debug(doc)} 'examples' value is an empty array")
    for value in examples:
        _example(value, target.example_list_with_context.examples.add() if has_context
                 else target.example_list.examples.add())
