"""A detector's name is declared once (core/names.py): every name has a class in
client/detectors.py, every class a name, and the pipeline's --detector offers the same."""

from client import detectors
from core import names
from pipeline import options


def test_every_detector_name_builds_and_the_pipeline_offers_the_same():
    assert set(detectors._CLASSES) == set(names.DETECTOR_NAMES)
    assert options.DETECTORS == names.DETECTOR_NAMES
    assert detectors.DEFAULT_DETECTOR in names.DETECTOR_NAMES
