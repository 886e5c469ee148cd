"""The page from synthetic reports: empty slices, no baseline, no class balance, and that it
stays self-contained (pure unit tests; the real-run tests are in test_dashboard_run.py)."""

import re

import numpy as np

from dashboard import data, render
from core import features


def _report(slices, models=("candidate",), blessed=None, class_balance=None):
    return data.Report(run_dir="/r", evaluation_uri="/r/e", slices=slices, models=list(models), blessed=blessed,
                       validation_failures=[], class_balance=class_balance)


def _slice(accuracy, count, confusion=None):
    metrics = {("candidate", data.ACCURACY, None): accuracy, ("candidate", data.COUNT, None): float(count)}
    return data.SliceMetrics(metrics, {"candidate": confusion} if confusion is not None else {})


def test_empty_slices_and_missing_parts_render_as_such():
    confusion = np.zeros((7, 7))
    confusion[3, 3] = 4
    page = render.render(_report({(): _slice(1.0, 4, confusion), (("lighting_bucket", 2),): _slice(1.0, 4)}))
    assert page.count('class="class-row"') == 7
    lighting = page.split('id="lighting"')[1].split("</section>")[0]
    assert lighting.count("no examples") == 3 and "1.000" in lighting  # buckets 0, 1, 3 are empty
    assert "no report in this run" in page and "blessing unknown" in page
    assert "baseline" not in page.split('id="headline"')[1].split("</section>")[0]
    cells = re.findall(r'data-actual="(\d)" data-predicted="(\d)" data-count="(\d+)"', page)
    assert len(cells) == 49 and ("3", "3", "4") in cells


def test_no_confusion_matrix_and_nan_metrics():
    report = _report({(): data.SliceMetrics({("candidate", data.ACCURACY, None): float("nan")}, {})}, blessed=False)
    page = render.render(report)
    assert "not computed" in page and "NOT BLESSED" in page
    assert report.slice().get(data.ACCURACY) is None  # NaN is "no value", not a number to draw


def test_self_contained():
    page = render.render(_report({(): _slice(0.5, 2, np.eye(7))}))
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "<style>" in page


def test_cividis_ramp_runs_dark_to_light():
    lightness = [sum(int(render._cividis(t)[i:i + 2], 16) for i in (1, 3, 5)) for t in np.linspace(0, 1, 11)]
    assert lightness == sorted(lightness)
    assert render._cividis(0.0) == render._CIVIDIS[0] and render._cividis(1.0) == render._CIVIDIS[-1]


def test_every_class_is_named_in_order():
    page = render.render(_report({(): _slice(0.5, 2, np.eye(7))}))
    assert re.findall(r'class="class-row" data-class="(\w+)"', page) == list(features.CLASS_NAMES)
