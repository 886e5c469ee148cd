"""The folder reader: layouts, conversion, every quarantine reason, duplicates and leaks, the
row accounting. Every tree is generated here (tools/demo_data.py's faces)."""

import os
import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest

from client import faces as face_ops
from components.fer_image_gen import folders, images
from core import features
from tools import demo_data


def read_all(root, **options):
    reader = folders.FolderReader(str(root), folders.IngestOptions(**options))
    items = list(reader)
    return items, reader.stats


def of(items, cls):
    return [i for i in items if isinstance(i, cls)]


def face(label=3, seed=0):
    return demo_data.draw_face(label, np.random.default_rng(seed))


def put(path, image, ext=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), image)


def client_conversion(path):
    """What the live client feeds the model for a whole image (client/analyze.Analyzer)."""
    from client.analyze import read_image

    pixels = read_image(str(path))
    gray = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.ndim == 3 else pixels
    return face_ops.crop_faces(gray, [(0, 0, gray.shape[1], gray.shape[0])])[0].ravel()


# --- layouts ---------------------------------------------------------------------------------


def test_kaggle_images_edition_train_and_test_only(tmp_path):
    """Only train/ and test/ (the Kaggle images edition): test is the reporting split."""
    demo_data.write_demo_tree(str(tmp_path), 60, seed=1)
    shutil.rmtree(tmp_path / "val")
    items, stats = read_all(tmp_path)
    assert stats.layout == "splits: Training, PrivateTest"
    assert set(stats.by_split) == {"train", "valid", "eval"}  # test/ became eval, no test split
    test_files = {str(p.relative_to(tmp_path)) for p in (tmp_path / "test").rglob("*.png")}
    assert {f.path for f in of(items, folders.Face) if f.split == "eval"} == test_files


def test_split_folder_synonyms_and_case(tmp_path):
    for split, emotion in (("Training", "Happiness"), ("PublicTest", "ANGER"), ("privatetest", "Surprised"),
                           ("train", "sad")):
        put(tmp_path / split / emotion / "a.png", face(seed=len(split)))
    items, stats = read_all(tmp_path)
    faces = {f.path: (f.label, f.split) for f in of(items, folders.Face)}
    assert faces[os.path.join("PublicTest", "ANGER", "a.png")] == (0, "eval")
    assert faces[os.path.join("privatetest", "Surprised", "a.png")] == (5, "test")
    assert {faces[os.path.join("Training", "Happiness", "a.png")][0], faces[os.path.join("train", "sad", "a.png")][0]} \
        == {3, 4}


def test_flat_emotion_folders_are_carved_80_10_10(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 200, seed=2, with_usage=False)
    _, stats = read_all(tmp_path)
    assert stats.layout.startswith("emotions")
    assert stats.valid == 200
    assert abs(stats.by_split["train"] - 160) <= 7 and abs(stats.by_split["eval"] - 20) <= 7
    assert stats.by_split["test"] == 0


@pytest.mark.parametrize("folders_made, words", [
    (["train/happy", "train/bored"], ["bored", "not emotions", "found: bored, happy", "surprised"]),
    (["happy", "stuff"], ["stuff", "neither splits nor emotions", "found: happy, stuff", "privatetest", "anger"]),
    (["happy", "train/sad"], ["mixed", "found: happy, train"]),
    (["val/happy"], ["no train/"]),
    ([], ["no folders"]),
])
def test_other_folders_are_refused_in_one_line(tmp_path, folders_made, words):
    for f in folders_made:
        (tmp_path / f).mkdir(parents=True)
    with pytest.raises(folders.LayoutError) as raised:
        folders.FolderReader(str(tmp_path))
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message


# --- conversion ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "webp"])
@pytest.mark.parametrize("colour, size", [(False, 48), (True, 48), (True, 131), (False, 300)])
def test_any_format_size_and_colour_converts_as_the_live_client(tmp_path, ext, colour, size):
    rng = np.random.default_rng(size)
    image = cv2.resize(face(seed=size), (size, int(size * 1.3)), interpolation=cv2.INTER_CUBIC)
    if colour:
        image = np.dstack([image, np.roll(image, 3, axis=0), rng.integers(0, 255, image.shape, dtype=np.uint8)])
    path = tmp_path / "train" / "happy" / f"a.{ext}"
    put(path, image)
    put(tmp_path / "test" / "sad" / "b.png", face(4))
    items, stats = read_all(tmp_path)
    (got,) = [f for f in of(items, folders.Face) if f.label == 3]
    assert got.pixels.shape == (features.NUM_PIXELS,) and got.pixels.dtype == np.uint8
    np.testing.assert_array_equal(got.pixels, client_conversion(path))


def test_image_size_reads_headers_of_every_format(tmp_path):
    image = np.zeros((37, 81, 3), np.uint8)
    for ext in ("jpg", "png", "bmp", "webp"):
        ok, data = cv2.imencode("." + ext, image)
        assert images.image_size(data.tobytes()) == (ext, (81, 37)), ext
    assert images.image_size(b"GIF89a....") == (None, None)


def test_crop_faces_keeps_the_largest_face_and_quarantines_no_face(tmp_path):
    from client.detectors import Detection

    big = np.full((200, 300), 90, np.uint8)
    big[20:140, 100:220] = cv2.resize(face(5), (120, 120))
    put(tmp_path / "train" / "surprise" / "one.png", big)
    put(tmp_path / "train" / "surprise" / "none.png", np.full((60, 60), 7, np.uint8))
    put(tmp_path / "test" / "sad" / "b.png", face(4))

    def detector(image):  # a small face and the large one; nothing in a flat image
        if image.std() == 0 or image.shape[0] < 200:
            return []
        return [Detection((5, 5, 20, 20), 0.9), Detection((100, 20, 120, 120), 0.99)]

    reader = folders.FolderReader(str(tmp_path), detector=detector)
    items = list(reader)
    (kept,) = [f for f in of(items, folders.Face) if f.label == 5]
    gray = cv2.cvtColor(cv2.imread(str(tmp_path / "train/surprise/one.png")), cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(kept.pixels, face_ops.crop_faces(gray, [(100, 20, 120, 120)])[0].ravel())
    rejected = {(q.path, q.reason) for q in of(items, folders.Quarantined)}
    assert rejected == {(os.path.join("train", "surprise", "none.png"), images.NO_FACE),
                        (os.path.join("test", "sad", "b.png"), images.NO_FACE)}


# --- quarantine ------------------------------------------------------------------------------


def _png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def make_bad_tree(root):
    """A generated tree with one file of every kind the ingest must quarantine; returns
    {relative path: reason}."""
    demo_data.write_demo_tree(str(root), 40, seed=3)
    happy = root / "train" / "happy"
    bad = {}

    def add(name, reason, data=None, folder=happy):
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        bad[str(path.relative_to(root))] = reason

    add("zero.jpg", images.EMPTY, b"")
    add("notes.txt", images.NOT_IMAGE, b"a text file, not a face\n")
    add("fake.png", images.NOT_IMAGE, b"<html>not really a png</html>")
    ok, png = cv2.imencode(".png", face())
    png = png.tobytes()
    idat = png.index(b"IDAT")
    add("broken.png", images.CORRUPT, png[: idat + 4] + bytes(range(256)) * 4)
    add("no_size.png", images.CORRUPT, b"\x89PNG\r\n\x1a\n" + b"\x00" * 4)
    add("bomb.png", images.TOO_LARGE, _png_header(100_000, 100_000) + b"\x00" * 64)
    os.symlink("nowhere.png", happy / "dangling.png")
    add("dangling.png", images.UNREADABLE)
    os.symlink("loop_b.png", happy / "loop_a.png")
    os.symlink("loop_a.png", happy / "loop_b.png")
    add("loop_a.png", images.SYMLINK_LOOP)
    add("loop_b.png", images.SYMLINK_LOOP)
    os.symlink("..", happy / "up")  # a folder link back to train/
    add("up", images.SYMLINK_LOOP)
    add("stray.png", images.NOT_IMAGE, png, folder=root / "train")  # outside any emotion folder
    return bad


def test_every_bad_file_is_quarantined_with_path_and_reason(tmp_path):
    bad = make_bad_tree(tmp_path)
    items, stats = read_all(tmp_path)
    quarantined = {q.path: q.reason for q in of(items, folders.Quarantined)}
    assert quarantined == bad
    assert all(q.detail for q in of(items, folders.Quarantined))
    assert stats.valid == 40 and stats.rejected == len(bad)
    assert stats.rows == stats.valid + stats.rejected + stats.skipped  # rows = written + rejected
    for reason in set(bad.values()):
        assert stats.by_reason[reason] == list(bad.values()).count(reason)


def test_pixel_limit_is_a_parameter(tmp_path):
    put(tmp_path / "train" / "happy" / "big.png", cv2.resize(face(), (400, 300)))
    put(tmp_path / "test" / "sad" / "b.png", face(4))
    items, stats = read_all(tmp_path, max_pixels=100_000)
    (q,) = of(items, folders.Quarantined)
    assert q.reason == images.TOO_LARGE and "120000 pixels" in q.detail


def test_max_rows_per_split_skips_without_reading(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 100, seed=4)
    (tmp_path / "train" / "happy" / "zzz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    _, stats = read_all(tmp_path, max_rows_per_split=5)
    assert stats.by_split["train"] == 5 and stats.by_split["eval"] == 5 and stats.by_split["test"] == 5
    assert stats.rejected == 0  # the corrupt file lies beyond the limit: not read
    assert stats.rows == 101 == stats.valid + stats.rejected + stats.skipped


# --- duplicates and leaks --------------------------------------------------------------------


def test_duplicates_and_train_test_leaks_are_reported(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 50, seed=5)
    happy = sorted((tmp_path / "train" / "happy").glob("*.png"))
    shutil.copy(happy[0], tmp_path / "train" / "happy" / "copy.png")  # a duplicate within train
    (tmp_path / "test" / "happy").mkdir(exist_ok=True)
    same_face = cv2.imread(str(happy[1]), cv2.IMREAD_GRAYSCALE)
    put(tmp_path / "test" / "happy" / "leaked.bmp", same_face)  # the same face, another file format
    items, stats = read_all(tmp_path)
    found = {(f.kind, f.path, f.first_path) for f in of(items, folders.Finding)}
    split_of = {f.path: f.split for f in of(items, folders.Face)}
    assert all(f.first_split == split_of[f.first_path] and f.split == split_of[f.path]
               for f in of(items, folders.Finding))
    rel = lambda p: str(p.relative_to(tmp_path))  # noqa: E731
    assert found == {
        ("duplicate", rel(tmp_path / "train/happy/copy.png"), rel(happy[0])),
        ("leak", rel(tmp_path / "test/happy/leaked.bmp"), rel(happy[1])),
    }
    assert (stats.duplicates, stats.leaks) == (1, 1)
    assert stats.valid == 52  # reported, not dropped


# --- order and split rules -------------------------------------------------------------------


def test_order_is_file_name_across_emotion_folders_and_split_is_stable(tmp_path):
    demo_data.write_demo_tree(str(tmp_path), 120, seed=6)
    first, _ = read_all(tmp_path)
    names = [os.path.basename(f.path) for f in of(first, folders.Face) if f.path.startswith("train")]
    assert names == sorted(names)
    # A bad file fixed later moves no other face between train and valid: it held its carve
    # slot while it was bad, as a CSV row with bad pixels holds its slot.
    fixed = tmp_path / "train" / "sad" / "000000x.png"
    fixed.write_bytes(b"")
    broken, _ = read_all(tmp_path)
    put(fixed, face(4))
    repaired, _ = read_all(tmp_path)
    split_of = lambda items: {f.path: f.split for f in of(items, folders.Face)}  # noqa: E731
    before, after = split_of(broken), split_of(repaired)
    assert after.pop(str(fixed.relative_to(tmp_path))) in ("train", "valid")
    assert before == after
    assert split_of(read_all(tmp_path, seed=7)[0]) != after  # the seed does decide


def test_crop_faces_with_the_real_haar_detector_on_a_photo(tmp_path):
    """The executor's detector (client.detectors by name) on a photo with one face: the kept
    48x48 is the client's crop of the face the detector finds."""
    skimage_data = pytest.importorskip("skimage.data")
    from client import detectors
    from components.fer_image_gen.component import make_detector

    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    put(tmp_path / "train" / "happy" / "astronaut.jpg", photo)
    put(tmp_path / "test" / "sad" / "flat.png", np.full((200, 200), 128, np.uint8))
    reader = folders.FolderReader(str(tmp_path), detector=make_detector("haar"))
    items = list(reader)
    (kept,) = of(items, folders.Face)
    decoded = cv2.imread(str(tmp_path / "train" / "happy" / "astronaut.jpg"))
    found = detectors.make("haar")(decoded)
    assert found
    x, y, w, h = max((d.box for d in found), key=lambda b: b[2] * b[3])
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 220  # her face, not the flag or the helmet
    gray = cv2.cvtColor(decoded, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(kept.pixels, face_ops.crop_faces(gray, [(x, y, w, h)])[0].ravel())
    (none,) = of(items, folders.Quarantined)
    assert (none.path, none.reason) == (os.path.join("test", "sad", "flat.png"), images.NO_FACE)
