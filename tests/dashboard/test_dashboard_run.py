"""The dashboard on a real run (the e2e `runs` fixture: its latest evaluation compares the
candidate with the blessed baseline and declines it), through the CLI, in a real headless
Chromium, and the analysis notebook executed on the same run."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from cli.main import main
from dashboard import data, render
from core import features

pytestmark = pytest.mark.e2e

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(REPO, "runs", "test-artifacts")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(runs):
    return data.load_report(runs[0])


def test_latest_evaluation_with_its_baseline_and_verdict(report):
    assert report.models == ["candidate", "baseline"]
    assert report.blessed is False
    assert any("sparse_categorical_accuracy" in f for f in report.validation_failures)
    assert report.class_balance and "disgust" in " ".join(report.class_balance["findings"])


def test_privatetest_is_reported_beside_publictest(report):
    test = report.test_overall
    assert test is not None and test.count() == 100  # the test split of the fixture
    assert 0.0 <= test.get(data.ACCURACY) <= test.get(data.TOP2) <= 1.0
    page = render.render(report)
    assert '<section id="test-split"><h2>PrivateTest (test split, reported only)</h2>' in page
    assert "selected on the validation carve of Training" in page


def test_slices_present(report):
    keys = set(report.slices)
    assert () in keys
    assert {k for k in keys if len(k) == 1 and k[0][0] == features.LABEL_KEY}
    for column in (features.LIGHTING_BUCKET_KEY, features.CONTRAST_BUCKET_KEY):
        values = {k[0][1] for k in keys if len(k) == 1 and k[0][0] == column}
        assert values and values <= set(range(features.NUM_QUANTILE_BUCKETS))
    assert any(len(k) == 2 for k in keys)  # emotion x lighting
    # Slice counts add up to the overall count.
    overall = report.slice().count()
    assert overall == 100  # the eval split of the 1,000-row fixture
    for column in (features.LABEL_KEY, features.LIGHTING_BUCKET_KEY, features.CONTRAST_BUCKET_KEY):
        assert sum(e.count() for k, e in report.slices.items() if len(k) == 1 and k[0][0] == column) == overall


def test_metrics_agree_with_the_confusion_matrix(report):
    """TFMA computes accuracy, recall and the confusion matrix separately; they must agree."""
    overall = report.slice()
    for model in report.models:
        counts = overall.confusion[model]
        assert counts.sum() == overall.count(model)
        assert overall.get(data.ACCURACY, model) == pytest.approx(np.trace(counts) / counts.sum(), abs=1e-6)
        for class_id in range(features.NUM_CLASSES):
            if counts[class_id].sum():
                assert overall.get("recall", model, class_id) == pytest.approx(
                    counts[class_id, class_id] / counts[class_id].sum(), abs=1e-6)
        assert 0.0 <= overall.get(data.ECE, model) <= 1.0


def test_baseline_none_drops_the_comparison(runs):
    assert data.load_report(runs[0], baseline=False).models == ["candidate"]


def test_cli_writes_the_page(runs, tmp_path, capsys):
    output = tmp_path / "report.html"
    assert main(["dashboard", "--run", runs[0], "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "NOT blessed, compared with the latest blessed model" in out
    page = output.read_text()
    assert page.count('class="class-row"') == 7 and len(re.findall(r'class="cm-cell"', page)) == 49
    assert main(["dashboard", "--run", str(tmp_path), "--output", str(tmp_path / "x.html")]) == 2
    assert "no metadata.sqlite" in capsys.readouterr().err


def _chromium():
    path = os.environ.get("FER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium (make browser)")
    pytest.skip("no Chromium here; `make browser` installs it")


def test_page_in_headless_chromium(runs, tmp_path):
    chromium = _chromium()
    page = tmp_path / "report.html"
    assert main(["dashboard", "--run", runs[0], "--output", str(page)]) == 0
    profile = str(tmp_path / "profile")
    url = page.as_uri()
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                          "--v=0", "--virtual-time-budget=2000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-ready="1"' in html  # the page's script ran to its end
    assert re.findall(r'class="class-row" data-class="(\w+)"', html) == list(features.CLASS_NAMES)
    cells = re.findall(r'class="cm-cell" data-actual="(\d)" data-predicted="(\d)" data-count="(\d+)"', html)
    assert len(cells) == 49
    counts = data.load_report(runs[0]).slice().confusion["candidate"]
    assert sum(int(c) for *_, c in cells) == int(counts.sum())
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if re.search(r"error|uncaught", line, re.I)]
    assert not errors, errors
    os.makedirs(ARTIFACTS, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS, "dashboard.png")
    shot = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1200,2400",
                           f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and os.path.getsize(screenshot) > 10_000, shot.stderr[-2000:]


def test_notebook_executes_on_the_run(runs):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(os.path.join(REPO, "notebooks", "model_analysis.ipynb"), as_version=4)
    os.environ["FER_RUN_DIR"] = runs[0]
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    finally:
        os.environ.pop("FER_RUN_DIR", None)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "models in this evaluation: ['candidate', 'baseline']" in text
    assert "validation ok: False" in text
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 5  # four slicing views and the confusion-matrix plot
