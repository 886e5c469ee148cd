"""Serializes one FER row as a tf.train.Example without building the protobuf object.

Building `tf.train.Example` with a 2,304-value Int64List costs ~1 ms per row in Python
(measured: bench/ingest_bench.py); the ingest would spend most of its time there. The wire
format of this fixed two-feature message is simple, so we write it directly with numpy
(~20x faster). tests/components/test_fer_example_gen.py checks the bytes parse back with
the real protobuf classes to the same values.

    Example    { features: Features = 1 }
    Features   { map<string, Feature> feature = 1 }   (entry: key = 1, value = 2)
    Feature    { Int64List int64_list = 3 }
    Int64List  { repeated int64 value = 1 [packed] }
"""

from __future__ import annotations

import numpy as np

from models import features


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) with field number `tag`."""
    return _varint((tag << 3) | 2) + _varint(len(payload)) + payload


def _packed_uint8_varints(values: np.ndarray) -> bytes:
    """Varint-encodes uint8 values: 0..127 take one byte, 128..255 two (low7|0x80, 1)."""
    values = np.asarray(values, dtype=np.uint8).ravel()
    high = values >= 128
    starts = np.arange(values.size) + np.cumsum(high) - high
    out = np.empty(values.size + int(high.sum()), dtype=np.uint8)
    out[starts] = np.where(high, (values & 0x7F) | 0x80, values)
    out[starts[high] + 1] = 1
    return out.tobytes()


def _int64_feature_entry(key: str, packed: bytes) -> bytes:
    int64_list = _field(1, packed)
    feature = _field(3, int64_list)
    entry = _field(1, key.encode()) + _field(2, feature)
    return _field(1, entry)


_LABEL_ENTRIES = [_int64_feature_entry(features.LABEL_KEY, _varint(i)) for i in range(features.NUM_CLASSES)]


def serialize_example(label: int, pixels: np.ndarray) -> bytes:
    """Serialized tf.train.Example{label: int64[1], pixels: int64[2304]}."""
    pixels_entry = _int64_feature_entry(features.PIXELS_KEY, _packed_uint8_varints(pixels))
    return _field(1, _LABEL_ENTRIES[label] + pixels_entry)
