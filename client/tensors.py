"""numpy <-> TensorProto without running TensorFlow ops: a frame's faces are encoded as raw
bytes (tensor_content), the way tf.make_tensor_proto does, at a fraction of its cost."""

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

_DTYPES = {np.dtype(np.uint8): types_pb2.DT_UINT8, np.dtype(np.float32): types_pb2.DT_FLOAT,
           np.dtype(np.int64): types_pb2.DT_INT64, np.dtype(np.int32): types_pb2.DT_INT32,
           np.dtype(np.float64): types_pb2.DT_DOUBLE}
_NUMPY = {v: k for k, v in _DTYPES.items()}
_VALUE_FIELDS = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT64: "int64_val",
                 types_pb2.DT_INT32: "int_val", types_pb2.DT_UINT8: "int_val"}


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    array = np.ascontiguousarray(array)
    if array.dtype not in _DTYPES:
        raise TypeError(f"unsupported dtype {array.dtype}")
    return tensor_pb2.TensorProto(
        dtype=_DTYPES[array.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d)
                                                            for d in array.shape]),
        tensor_content=array.tobytes(),
    )


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    dtype = _NUMPY[proto.dtype]
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = np.asarray(getattr(proto, _VALUE_FIELDS[proto.dtype]), dtype=dtype)
    count = int(np.prod(shape)) if shape else 1
    if values.size == 1 and count > 1:  # TF's run-length form: one value fills the tensor
        values = np.full(count, values[0], dtype=dtype)
    return values.reshape(shape)
