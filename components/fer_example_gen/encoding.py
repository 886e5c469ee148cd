"""Serializes one FER row as a tf.train.Example without building the protobuf object.

Building `tf.train.Example` with a 2,304-value Int64List costs ~1 ms per row in Python
(measured: bench/ingest_bench.py); the ingest would spend most of its time there. The wire
format of this fixed two-feature message is simple, so we write it directly with numpy
(~30x faster). tests/components/test_fer_example_gen.py checks the bytes parse back with
the real protobuf classes to the same values.

    Example    { features: Features = 1 }
    Features   { map<string, Feature> feature = 1 }   (entry: key = 1, value = 2)
    Feature    { Int64List int64_list = 3 }
    Int64List  { repeated int64 value = 1 [packed] }
"""

from __future__ import annotations

import numpy as np

from core import features


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
    """Varint-encodes uint8 values: 0..127 take one byte (the value), 128..255 two bytes:
    (v & 0x7F) | 0x80, which is v itself, then v >> 7, which is 1. Each value as the
    little-endian uint16 v | 0x100 gives both bytes; np.compress keeps the second one only for
    v >= 128 (4x faster than boolean indexing, bench/results/folder_ingest.md)."""
    values = np.asarray(values, dtype=np.uint8).ravel()
    words = values.astype("<u2")
    words |= 0x100
    keep = np.empty((values.size, 2), dtype=bool)
    keep[:, 0] = True
    np.greater_equal(values, 128, out=keep[:, 1])
    return np.compress(keep.ravel(), words.view(np.uint8)).tobytes()


def _int64_feature_entry(key: str, packed: bytes) -> bytes:
    int64_list = _field(1, packed)
    feature = _field(3, int64_list)
    entry = _field(1, key.encode()) + _field(2, feature)
    return _field(1, entry)


_LABEL_ENTRIES = [_int64_feature_entry(features.LABEL_KEY, _varint(i)) for i in range(features.NUM_CLASSES)]
# Lengths on this path are < 2**14: table lookups instead of _varint calls.
_VARINTS = [_varint(i) for i in range(1 << 14)]
_PIXELS_KEY_FIELD = _field(1, features.PIXELS_KEY.encode())


def serialize_example(label: int, pixels: np.ndarray) -> bytes:
    """Serialized tf.train.Example{label: int64[1], pixels: int64[2304]}.

    The same bytes as the _field() nesting of _int64_feature_entry, written out with
    precomputed tags (0x0A: field 1, 0x12: field 2, 0x1A: field 3, all length-delimited).
    """
    packed = _packed_uint8_varints(pixels)
    int64_list = b"\x0a" + _VARINTS[len(packed)] + packed
    feature = b"\x1a" + _VARINTS[len(int64_list)] + int64_list
    entry = _PIXELS_KEY_FIELD + b"\x12" + _VARINTS[len(feature)] + feature
    features_body = _LABEL_ENTRIES[label] + b"\x0a" + _VARINTS[len(entry)] + entry
    return b"\x0a" + _VARINTS[len(features_body)] + features_body


def serialize_examples(labels, pixels: np.ndarray) -> list:
    """serialize_example for a batch: labels[i] and pixels[i] (uint8 [N, NUM_PIXELS]) -> the same
    bytes as serialize_example(labels[i], pixels[i]), with the varint packing done once for the
    batch (most of serialize_example's cost is numpy's per-call overhead on 2,304 values)."""
    if not len(labels):
        return []
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(len(labels), -1)
    packed = _packed_uint8_varints(pixels)
    lengths = pixels.shape[1] + np.count_nonzero(pixels >= 128, axis=1)
    ends = np.cumsum(lengths).tolist()
    records = []
    start = 0
    for label, end in zip(labels, ends):
        n = end - start  # the lengths of the nested messages, inside out; then one copy
        int64_list = 1 + len(_VARINTS[n]) + n
        feature = 1 + len(_VARINTS[int64_list]) + int64_list
        entry = len(_PIXELS_KEY_FIELD) + 1 + len(_VARINTS[feature]) + feature
        label_entry = _LABEL_ENTRIES[label]
        features_body = len(label_entry) + 1 + len(_VARINTS[entry]) + entry
        records.append(b"".join((b"\x0a", _VARINTS[features_body], label_entry, b"\x0a", _VARINTS[entry],
                                 _PIXELS_KEY_FIELD, b"\x12", _VARINTS[feature], b"\x1a", _VARINTS[int64_list],
                                 b"\x0a", _VARINTS[n], packed[start:end])))
        start = end
    return records
