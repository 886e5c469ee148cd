"""What a request may be, for both codecs (the JSON one, json_tensor.py, and the TensorProto
one in api.py) and the service: the error every refusal raises, the limits a request is held
to, and the checks of one input against its signature and those limits, made from what the
request declares before anything is allocated for it. TF-free at import (serving/options.py
and the CLI's --help read Limits), the TF Serving messages whole where its source fixes them
(predict_util.cc, http_rest_api_handler.cc)."""

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from serving.defaults import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_MESSAGE_BYTES

DEFAULT_SIGNATURE = "serving_default"


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # a grpc.StatusCode name


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (--max_message_mb, --max_batch_rows), and
    whether Classify and Regress check a signature's method_name
    (--enable_signature_method_name_check: TF Serving's default is false, server.h)."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    method_name_check: bool = False


def signature_not_found(name: str, rest: bool) -> ApiError:
    """TF Serving answers a Predict naming a missing signature differently per API: REST's
    handler refuses it while looking up the inputs to decode the JSON against
    (http_rest_api_handler.cc's GetInfoMap), gRPC's Predict in predict_util.cc."""
    if rest:
        return ApiError("INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def')
    return ApiError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')


def dtype_name(dtype) -> str:
    """TF's DataTypeString ("float", "double", "uint8"), the name TF Serving's messages use."""
    from tensorflow.core.framework import types_pb2  # loaded already: a tf.DType exists

    return types_pb2.DataType.Name(dtype.as_datatype_enum)[len("DT_"):].lower()


def check_rows(name: str, rows: int, limits: Limits) -> None:
    if rows > limits.max_batch_rows:
        raise ApiError("INVALID_ARGUMENT", f"input {name} has {rows} rows; this server runs at most "
                                           f"{limits.max_batch_rows} per request (--max_batch_rows)")


def check_input(name: str, dtype, dims: Sequence[int], spec, limits: Limits, index: int = 0,
                string_bytes: Optional[int] = None) -> None:
    """dtype, shape, rows and size of one input (a tf.DType, its dims, the signature's
    tf.TensorSpec), from what the request declares; `string_bytes`: a string input's size."""
    if dtype != spec.dtype:
        raise ApiError("INVALID_ARGUMENT", f"Expects arg[{index}] to be {dtype_name(spec.dtype)} but "
                                           f"{dtype_name(dtype)} is provided")
    if any(d < 0 for d in dims):
        raise ApiError("INVALID_ARGUMENT", f"input {name}: dimension sizes must be >= 0, got {list(dims)}")
    check_rows(name, dims[0] if dims else 1, limits)
    if not spec.shape.is_compatible_with(list(dims)):
        raise ApiError("INVALID_ARGUMENT", f"input {name} has shape {list(dims)}, the signature expects "
                                           f"{[-1 if d is None else d for d in spec.shape.as_list()]}")
    size = string_bytes if string_bytes is not None else math.prod(dims) * dtype.size
    if size > limits.max_message_bytes:
        raise ApiError("RESOURCE_EXHAUSTED", f"input {name} of shape {list(dims)} takes {size} bytes, above the "
                                             f"limit of {limits.max_message_bytes} (--max_message_mb)")


def check_input_names(requested: Sequence[str], specs: Dict[str, object]) -> None:
    """TF Serving's VerifyRequestInputsSize and GetInputValues messages."""
    requested, expected = set(requested), set(specs)
    if len(requested) != len(expected):
        raise ApiError("INVALID_ARGUMENT", (
            f"input size does not match signature: {len(requested)}!={len(expected)} "
            f"len({{{','.join(sorted(requested))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(requested - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - requested))}}}."))
    unknown = sorted(requested - expected)
    if unknown:
        raise ApiError("INVALID_ARGUMENT", f"input tensor alias not found in signature: {unknown[0]}. "
                                           f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
