import os

import pytest

# Keep TF quiet and deterministic enough for tests on 2 cores.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REAL_FER_CSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013", "fer2013.csv.gz")



@pytest.fixture(scope="session")
def demo_csv(tmp_path_factory):
    """A small generated FER CSV (300 rows: 240 Training, 30 PublicTest, 30 PrivateTest)."""
    from pipeline import demo_data

    path = tmp_path_factory.mktemp("data") / "demo.csv"
    demo_data.write_demo_file(str(path), rows=300, seed=7)
    return str(path)


@pytest.fixture
def real_fer_csv():
    if not os.path.exists(REAL_FER_CSV):
        pytest.skip("the real FER-2013 file is not beside this checkout")
    return os.path.abspath(REAL_FER_CSV)
