"""Generated demo data: valid FER format, FER-like class balance, drawn faces differ by class."""

import io

import numpy as np

from components.fer_example_gen import parser
from core import features
from tools import demo_data


def test_demo_csv_is_valid_fer_with_all_usages(tmp_path):
    path = tmp_path / "demo.csv.gz"
    counts = demo_data.write_demo_file(str(path), rows=400, seed=3)
    reader = parser.FerCsvReader(str(path))
    rows = [r for r in reader if isinstance(r, parser.Row)]
    assert reader.stats.rejected == 0 and len(rows) == 400
    by_split = reader.stats.by_split
    assert by_split["train"] + by_split["valid"] == 320 and 26 <= by_split["valid"] <= 38  # the 10 % carve
    assert (by_split["eval"], by_split["test"]) == (40, 40)
    assert counts["usage"] == {"Training": 320, "PublicTest": 40, "PrivateTest": 40}
    assert sum(counts["classes"].values()) == 400
    # Training rows come first, as in the Kaggle file.
    assert {r.split for r in rows[:320]} == {"train", "valid"}


def test_class_shares_follow_fer2013():
    out = io.StringIO()
    counts = demo_data.write_demo_csv(out, rows=3000, seed=0)
    shares = np.array([counts["classes"][n] for n in features.CLASS_NAMES]) / 3000
    np.testing.assert_allclose(shares, demo_data.CLASS_PROBABILITIES, atol=0.025)
    assert shares[1] < 0.05  # disgust is rare, as in FER-2013


def test_without_usage_column():
    out = io.StringIO()
    demo_data.write_demo_csv(out, rows=5, with_usage=False)
    assert out.getvalue().splitlines()[0] == "emotion,pixels"


def test_expressions_differ_by_class():
    rng = np.random.default_rng(0)
    mean_faces = [np.mean([demo_data.draw_face(c, rng).astype(float) for _ in range(40)], axis=0) for c in range(7)]
    for a in range(7):
        for b in range(a + 1, 7):
            # the mean images of any two classes differ clearly somewhere (brows, eyes, mouth)
            assert np.abs(mean_faces[a] - mean_faces[b]).max() > 20, (a, b)


def test_deterministic_with_seed():
    a, b = io.StringIO(), io.StringIO()
    demo_data.write_demo_csv(a, rows=3, seed=5)
    demo_data.write_demo_csv(b, rows=3, seed=5)
    assert a.getvalue() == b.getvalue()
