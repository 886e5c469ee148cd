"""The row parser: every reject reason, every accepted variant, and the row accounting."""

import gzip
import io

import numpy as np
import pytest

from components.fer_example_gen import parser
from core import features

PIXELS = " ".join(str(i % 256) for i in range(features.NUM_PIXELS))


def write(tmp_path, text: str, name="f.csv", mode="w", **kw):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as f:
            f.write(text)
    else:
        with open(path, mode, newline="", **kw) as f:
            f.write(text)
    return str(path)


def read_all(path, **kw):
    reader = parser.FerCsvReader(path, **kw)
    items = list(reader)
    return items, reader.stats


def rows_of(items):
    return [i for i in items if isinstance(i, parser.Row)]


def rejects_of(items):
    return [i for i in items if isinstance(i, parser.Reject)]


def test_valid_row_parses_pixels_label_and_split(tmp_path):
    path = write(tmp_path, f"emotion,pixels,Usage\n3,{PIXELS},Training\n5,{PIXELS},PublicTest\n0,{PIXELS},PrivateTest\n")
    items, stats = read_all(path)
    rows = rows_of(items)
    assert [(r.label, r.split, r.line) for r in rows] == [(3, "train", 2), (5, "eval", 3), (0, "test", 4)]
    assert rows[0].pixels.dtype == np.uint8 and rows[0].pixels.shape == (features.NUM_PIXELS,)
    np.testing.assert_array_equal(rows[0].pixels, np.arange(features.NUM_PIXELS) % 256)
    assert (stats.rows, stats.valid, stats.rejected) == (3, 3, 0)


@pytest.mark.parametrize(
    "row, reason",
    [
        (f"3,{PIXELS}", parser.FIELD_COUNT),
        (f"3,{PIXELS},Training,extra", parser.FIELD_COUNT),
        ("3,1 2 3,Training", parser.PIXEL_COUNT),
        (f"3,{PIXELS} 7,Training", parser.PIXEL_COUNT),
        ("3,,Training", parser.PIXEL_COUNT),
        (f"3,{PIXELS.replace('17', '1x7', 1)},Training", parser.PIXEL_VALUE),
        (f"3,{PIXELS.replace('17', '256', 1)},Training", parser.PIXEL_VALUE),
        (f"3,{PIXELS.replace('17', '-1', 1)},Training", parser.PIXEL_VALUE),
        (f"3,{PIXELS.replace('17', '1.5', 1)},Training", parser.PIXEL_VALUE),
        (f"3,{PIXELS.replace('17', '1e3', 1)},Training", parser.PIXEL_VALUE),
        (f"3,{PIXELS.replace(' 17 ', ' 18446744073709551621 ', 1)},Training", parser.PIXEL_VALUE),  # 2**64 + 5
        (f"3,{PIXELS} x,Training", parser.PIXEL_VALUE),
        (f"7,{PIXELS},Training", parser.LABEL),
        (f"-1,{PIXELS},Training", parser.LABEL),
        (f"happy,{PIXELS},Training", parser.LABEL),
        (f"3.0,{PIXELS},Training", parser.LABEL),
        (f",{PIXELS},Training", parser.LABEL),
        (f"3,{PIXELS},Validation", parser.USAGE),
        (f"3,{PIXELS},", parser.USAGE),
    ],
)
def test_each_reject_reason(tmp_path, row, reason):
    path = write(tmp_path, f"emotion,pixels,Usage\n1,{PIXELS},Training\n{row}\n2,{PIXELS},PublicTest\n")
    items, stats = read_all(path)
    rejects = rejects_of(items)
    assert [(r.line, r.reason) for r in rejects] == [(3, reason)]
    assert rejects[0].detail  # says what was wrong
    assert (stats.rows, stats.valid, stats.rejected) == (3, 2, 1)
    assert stats.rows == stats.valid + stats.rejected + stats.skipped
    assert stats.by_reason == {reason: 1}


def test_pixel_value_detail_names_the_position(tmp_path):
    pixels = " ".join(["0"] * 10 + ["999"] + ["0"] * (features.NUM_PIXELS - 11))
    path = write(tmp_path, f"emotion,pixels,Usage\n3,{pixels},Training\n")
    (reject,) = rejects_of(read_all(path)[0])
    assert reject.reason == parser.PIXEL_VALUE and "pixel 10" in reject.detail and "999" in reject.detail


def test_csv_syntax_error_is_a_reject_not_a_crash(tmp_path):
    path = write(tmp_path, f"emotion,pixels,Usage\n3,{PIXELS},Training\n4,\"12\0 3\",Training\n5,{PIXELS},Training\n")
    items, stats = read_all(path)
    assert [r.reason for r in rejects_of(items)] == [parser.CSV_SYNTAX]
    assert stats.valid == 2 and stats.rows == 3


@pytest.mark.parametrize("variant", ["gzip", "crlf", "bom", "quoted", "bom_gzip_crlf", "spaces", "case"])
def test_accepted_variants(tmp_path, variant):
    header, row = "emotion,pixels,Usage", f"3,{PIXELS},Training"
    newline = "\r\n" if "crlf" in variant else "\n"
    if variant == "quoted":
        header, row = '"emotion","pixels","Usage"', f'"3","{PIXELS}","Training"'
    if variant == "spaces":
        row = f" 3 , {PIXELS.replace(' ', '  ')} , Training "
    if variant == "case":
        header = "Emotion,Pixels,usage"
    text = header + newline + row + newline + row + newline
    if "bom" in variant:
        text = "\ufeff" + text
    name = "f.csv.gz" if "gzip" in variant else "f.csv"
    items, stats = read_all(write(tmp_path, text, name=name))
    assert stats.rejected == 0 and stats.valid == 2, rejects_of(items)
    assert all(r.label == 3 and r.split == "train" for r in rows_of(items))


def test_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(f"emotion,pixels,Usage\n3,{PIXELS},Training\n".encode()))
    assert read_all(str(path))[1].valid == 1


def test_blank_lines_are_not_rows(tmp_path):
    path = write(tmp_path, f"emotion,pixels,Usage\n\n3,{PIXELS},Training\n\n")
    items, stats = read_all(path)
    assert stats.rows == 1 and rows_of(items)[0].line == 3


def test_no_usage_column_gives_seeded_stratified_80_10_10_split(tmp_path):
    labels = [0] * 1000 + [1] * 30 + [3] * 970  # a rare class, in file order by class
    text = "emotion,pixels\n" + "".join(f"{label},{PIXELS}\n" for label in labels)
    path = write(tmp_path, text)
    items, stats = read_all(path, seed=1)
    rows = rows_of(items)
    for label, count in ((0, 1000), (1, 30), (3, 970)):
        of_class = [r.split for r in rows if r.label == label]
        # stratified: every class, the rare one included, gets its share to within one block of 10
        assert abs(of_class.count("valid") - count / 10) <= 1 and abs(of_class.count("eval") - count / 10) <= 1
    splits = [r.split for r in rows]
    assert splits == [r.split for r in rows_of(read_all(path, seed=1)[0])]  # seeded: reproducible
    assert splits != [r.split for r in rows_of(read_all(path, seed=2)[0])]
    assert stats.has_usage_column is False


def test_training_rows_give_a_stratified_validation_carve_and_test_rows_are_never_carved(tmp_path):
    text = "emotion,pixels,Usage\n" + "".join(f"{i % 7},{PIXELS},Training\n" for i in range(700))
    text += "".join(f"{i % 7},{PIXELS},PublicTest\n" for i in range(70))
    text += "".join(f"{i % 7},{PIXELS},PrivateTest\n" for i in range(70))
    rows = rows_of(read_all(write(tmp_path, text), seed=3)[0])
    for label in range(7):
        training = [r.split for r in rows if r.label == label and r.line <= 701]
        assert training.count("valid") == 10 and training.count("train") == 90
    assert [r.split for r in rows if r.line > 701] == ["eval"] * 70 + ["test"] * 70


def test_carve_shares_must_fit_a_block_and_add_up():
    with pytest.raises(ValueError, match="add up to 1"):
        parser.StratifiedCarve({"train": 0.9, "valid": 0.2}, seed=0)
    with pytest.raises(ValueError, match="multiples"):
        parser.StratifiedCarve({"train": 1 - 1 / 3001, "valid": 1 / 3001}, seed=0)
    carve = parser.StratifiedCarve({"train": 0.85, "valid": 0.15}, seed=0)  # blocks of 20
    assert [carve.assign(5) for _ in range(20)].count("valid") == 3


def test_max_rows_per_split_keeps_file_order_and_counts_skipped(tmp_path):
    text = "emotion,pixels,Usage\n" + "".join(f"{i % 7},{PIXELS},Training\n" for i in range(10))
    text += "".join(f"1,{PIXELS},PublicTest\n" for _ in range(3))
    items, stats = read_all(write(tmp_path, text), max_rows_per_split=4)
    rows = rows_of(items)
    assert [r.line for r in rows if r.split == "train"] == [2, 3, 4, 5]
    assert len([r for r in rows if r.split == "eval"]) == 3
    assert (stats.rows, stats.valid, stats.skipped) == (13, 7, 6)


@pytest.mark.parametrize(
    "text, message",
    [("", "empty"), ("a,b,c\n1,2,3\n", "must name the columns"), ("emotion,emotion,pixels\n", "each once")],
)
def test_bad_header_is_a_file_error(tmp_path, text, message):
    with pytest.raises(parser.FerCsvError, match=message):
        read_all(write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(parser.FerCsvError, match="cannot open"):
        read_all(str(tmp_path / "nope.csv"))


def test_threshold():
    stats = parser.ParseStats(rows=1000, valid=998, rejected=2)
    stats.by_reason[parser.LABEL] = 2
    stats.check_threshold(0.002)  # 0.2 % is allowed at 0.2 %
    with pytest.raises(parser.RejectThresholdExceeded, match=r"2 of 1000 rows rejected.*label=2"):
        stats.check_threshold(0.001)


def test_scan_writes_rejects_csv(tmp_path):
    path = write(tmp_path, f"emotion,pixels,Usage\n9,{PIXELS},Training\n3,{PIXELS},Training\n")
    out = io.StringIO()
    stats = parser.scan(path, rejects_out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "line,reason,detail"
    assert lines[1].startswith("2,label,")
    assert stats.rejected == 1 and stats.valid == 1


def test_real_fer_sample_parses_cleanly(real_fer_csv):
    reader = parser.FerCsvReader(real_fer_csv, max_rows_per_split=500)
    rows = [r for r in reader if isinstance(r, parser.Row)]
    assert reader.stats.rejected == 0
    assert {r.split for r in rows} == {"train", "valid", "eval"}


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_path_agrees_with_python_ints(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 256, features.NUM_PIXELS)
    values[: seed % 5] = [0, 9, 10, 99, 100][: seed % 5]  # every token length
    text = " ".join(map(str, values))
    assert parser._parse_canonical(text) is not None
    np.testing.assert_array_equal(parser.parse_pixels(text), values)


@pytest.mark.parametrize("text", ["0255 " + "1 " * 2303, "\t".join(["5"] * 2304), "  " + " ".join(["7"] * 2304) + "  "])
def test_non_canonical_but_valid_rows_are_accepted(text):
    pixels = parser.parse_pixels(text)
    assert pixels.size == features.NUM_PIXELS and pixels.dtype == np.uint8


def test_gzip_reader_stopped_early_closes_cleanly(tmp_path):
    import threading

    text = "emotion,pixels,Usage\n" + f"3,{PIXELS},Training\n" * 2000  # ~16 MB: many read-ahead chunks
    path = write(tmp_path, text, name="big.csv.gz")
    before = threading.active_count()
    with parser.open_text(path) as stream:
        stream.readline()
    assert threading.active_count() == before
    items, stats = read_all(path)
    assert stats.valid == 2000


def test_truncated_gzip_is_a_file_error_naming_the_file(tmp_path):
    good = tmp_path / "good.csv.gz"
    write(tmp_path, "emotion,pixels,Usage\n" + f"3,{PIXELS},Training\n" * 300, name="good.csv.gz")
    data = good.read_bytes()
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(parser.FerCsvError, match=r"bad\.csv\.gz near line \d+: cannot read the file"):
        read_all(str(bad))
