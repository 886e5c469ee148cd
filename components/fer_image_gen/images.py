"""One image file -> its 48x48 gray face, or the reason it is quarantined. No TensorFlow.

The format and size come from the header alone (a decompression bomb is refused before it is
decoded); decoding is OpenCV's (IMREAD_COLOR, or IMREAD_GRAYSCALE for a single-channel file
when no detector runs, the same pixels); the face is the live client's crop
(client.faces.crop_faces: area-averaged resize to 48x48) of the whole image or of the largest
face a detector finds. components/fer_image_gen/folders.py walks the tree and calls `load`.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import stat
import struct
from typing import Callable, Optional, Tuple, Union

import cv2
import numpy as np

from client import faces as face_ops
from core import features

# Why a file was quarantined. Short and stable: they are keys in JSON reports.
EMPTY = "empty"  # zero bytes
NOT_IMAGE = "not_image"  # not a jpg, png, bmp or webp by its content
CORRUPT = "corrupt"  # an image header, but the image cannot be decoded
TOO_LARGE = "too_large"  # more pixels (or bytes) than the limit: a decompression bomb
UNREADABLE = "unreadable"  # the file cannot be opened or read (permissions, a broken link, ...)
SYMLINK_LOOP = "symlink_loop"  # a symbolic link that leads back to itself or to a folder above it
NO_FACE = "no_face"  # --crop-faces: the detector found no face
REASONS = (EMPTY, NOT_IMAGE, CORRUPT, TOO_LARGE, UNREADABLE, SYMLINK_LOOP, NO_FACE)

IMAGE_FORMATS = ("jpg", "png", "bmp", "webp")
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000  # a 64-Mpx photo decodes to ~190 MB of BGR; above that: a bomb
DEFAULT_MAX_FILE_BYTES = 256 << 20


def _be16(b, i):
    return (b[i] << 8) | b[i + 1]


def image_size(data: bytes) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """(format, (width, height)) from the header alone, without decoding: (None, None) for
    content that is none of IMAGE_FORMATS, (format, None) for a header that gives no size."""
    kind, size, _ = _header(data)
    return kind, size


def _header(data: bytes) -> Tuple[Optional[str], Optional[Tuple[int, int]], bool]:
    """image_size's (format, size), and _single_channel's answer, from one walk over a JPEG's
    markers (the two walks in Python took ~4 % of the single-thread ingest of 48x48 JPEGs, cProfile)."""
    n = len(data)
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        plain = True  # only length-prefixed segments so far: _single_channel walks the same way
        exif = False
        while i + 9 < n:
            if data[i] != 0xFF:
                return "jpg", None, False
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                plain = False
                i += 1
                continue
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
                plain = False
                i += 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                size = (_be16(data, i + 7), _be16(data, i + 5))
                if not plain:  # an unusual file: _single_channel's own walk decides, as before
                    return "jpg", size, _single_channel("jpg", data)
                return "jpg", size, not exif and data[i + 9] == 1 and data[i + 4] == 8
            if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
                return "jpg", None, False
            if marker == 0xE1:  # APP1: EXIF
                exif = True
            i += 2 + _be16(data, i + 2)
        return "jpg", None, False
    kind, size = _other_size(data)
    return kind, size, kind == "png" and size is not None and _single_channel("png", data)


def _other_size(data: bytes) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """image_size for PNG, BMP and WebP."""
    n = len(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if n >= 24 and data[12:16] == b"IHDR":
            return "png", struct.unpack(">II", data[16:24])
        return "png", None
    if data[:2] == b"BM":
        if n >= 26:
            header = struct.unpack("<I", data[14:18])[0]
            if header == 12:
                return "bmp", struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return "bmp", (abs(width), abs(height))
        return "bmp", None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8 " and n >= 30 and data[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", data[26:30])
            return "webp", (w & 0x3FFF, h & 0x3FFF)
        if chunk == b"VP8L" and n >= 25 and data[20] == 0x2F:
            bits = struct.unpack("<I", data[21:25])[0]
            return "webp", ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        if chunk == b"VP8X" and n >= 30:
            return "webp", (1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little"))
        return "webp", None
    return None, None


Detector = Callable[[np.ndarray], list]  # client.detectors: BGR or gray image -> [Detection]


@dataclasses.dataclass
class Loaded:  # one a file, made on the decoding threads
    pixels: Optional[np.ndarray]  # uint8 [NUM_PIXELS], or None with a reason
    content_hash: int = 0  # _hash64 of the file's bytes (0: not read)
    face_hash: int = 0  # _hash64 of the 48x48 face (0: none)
    record: Optional[bytes] = None
    reason: str = ""
    detail: str = ""


def _read(path: str, max_bytes: int) -> Union[bytes, Loaded]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return Loaded(None, reason=SYMLINK_LOOP, detail="the link leads back to itself")
        if e.errno == errno.ENOENT and os.path.islink(path):
            return Loaded(None, reason=UNREADABLE, detail=f"broken link to {os.readlink(path)}")
        return Loaded(None, reason=UNREADABLE, detail=e.strerror or str(e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Loaded(None, reason=NOT_IMAGE, detail="not a regular file")
        if st.st_size > max_bytes:
            return Loaded(None, reason=TOO_LARGE, detail=f"{st.st_size} bytes, above the limit of {max_bytes}")
        data = os.read(fd, st.st_size + 1)  # one call reads a file that does not grow meanwhile
        if len(data) <= st.st_size:
            return data
        chunks = [data]
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as e:
        return Loaded(None, reason=UNREADABLE, detail=e.strerror or str(e))
    finally:
        os.close(fd)


def to_face(bgr: np.ndarray, detector: Optional[Detector] = None) -> Optional[np.ndarray]:
    """uint8 [48, 48] the way the live client makes it (client/analyze.Analyzer): BGR -> gray,
    then client.faces.crop_faces of the whole image or, with a detector, of the largest face
    it finds (None: no face)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    if detector is None:
        if gray.shape == features.IMAGE_SHAPE[:2]:
            return gray  # crop_faces' resize to its own size is a copy (cv::resize), at ~5x this call's cost
        box = (0, 0, gray.shape[1], gray.shape[0])
    else:
        found = detector(bgr)
        if not found:
            return None
        x, y, w, h = max((d.box for d in found), key=lambda b: b[2] * b[3])
        x, y = max(0, x), max(0, y)
        box = (x, y, min(w, gray.shape[1] - x), min(h, gray.shape[0] - y))
        if box[2] < 1 or box[3] < 1:  # a box outside the image
            return None
    return face_ops.crop_faces(gray, [box])[0]


def _single_channel(kind: str, data: bytes) -> bool:
    """An 8-bit one-channel JPEG or PNG without EXIF: OpenCV's gray decode of it is exactly its
    colour decode turned gray (the three channels are equal and BGR2GRAY's weights sum to 1),
    at less cost. EXIF could rotate a colour decode and not a gray one, so it takes the long way."""
    if kind == "jpg":
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            if marker == 0xE1:  # APP1: EXIF
                return False
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return data[i + 9] == 1 and data[i + 4] == 8  # components, precision
            if marker in (0xD9, 0xDA) or marker == 0xFF:
                return False
            i += 2 + _be16(data, i + 2)
        return False
    if kind == "png":
        # bit depth 8, colour type gray; a file cut before the colour type is not (imdecode calls it corrupt)
        return len(data) > 25 and data[24] == 8 and data[25] == 0 and b"eXIf" not in data
    return False


def _hash64(data) -> int:
    """A 64-bit content hash, never 0 (0 marks "none"): 1 in 10^8 odds of a false duplicate
    among a million files. Signed, as SQLite's integers are (the duplicate index, _FileIndex)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True) or 1


def load(path: str, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, max_bytes: int = DEFAULT_MAX_FILE_BYTES,
         detector: Optional[Detector] = None) -> Loaded:
    """One file -> its 48x48 face, content and face hashes, or the reason it is quarantined."""
    data = _read(path, max_bytes)
    if isinstance(data, Loaded):
        return data
    if not data:
        return Loaded(None, reason=EMPTY, detail="zero bytes")
    kind, size, single_channel = _header(data)
    if kind is None:
        return Loaded(None, reason=NOT_IMAGE, detail=f"not {', '.join(IMAGE_FORMATS)} (starts {data[:8]!r})")
    if size is None:
        return Loaded(None, reason=CORRUPT, detail=f"{kind} header without an image size")
    if size[0] * size[1] > max_pixels:
        return Loaded(None, reason=TOO_LARGE,
                      detail=f"{size[0]}x{size[1]} = {size[0] * size[1]} pixels, above the limit of {max_pixels}")
    try:
        gray = detector is None and single_channel
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    except cv2.error as e:
        return Loaded(None, reason=CORRUPT, detail=f"{kind}: {str(e).strip().splitlines()[-1][:120]}")
    if bgr is None or bgr.size == 0:
        return Loaded(None, reason=CORRUPT, detail=f"{kind} that OpenCV cannot decode")
    content_hash = _hash64(data)
    face = to_face(bgr, detector)
    if face is None:
        return Loaded(None, content_hash, reason=NO_FACE, detail="the face detector found no face")
    pixels = face.reshape(-1)
    return Loaded(pixels, content_hash, _hash64(pixels))  # the array's own buffer: no copy
