"""Report -> one self-contained HTML page: inline CSS, inline SVG charts, a small inline
script (count/rate toggle of the confusion matrix); no network, no external files.

Colours are chosen for colour-blind readers: the heatmaps use the cividis ramp (monotone
in lightness, readable with any colour-vision deficiency and in greyscale), candidate and
baseline are the Okabe-Ito blue and orange, and every coloured cell also carries its number.
"""

import html
import os
from typing import List, Optional, Sequence

import numpy as np

from dashboard.data import ACCURACY, BASELINE, CANDIDATE, COUNT, ECE, MACRO_F1, PER_CLASS, TOP2, Report
from core import features

CANDIDATE_COLOUR, BASELINE_COLOUR = "#0072B2", "#E69F00"  # Okabe-Ito
# cividis, sampled at 0, 0.1, ..., 1
_CIVIDIS = ["#00224e", "#0f326e", "#3a426c", "#575269", "#6d6370", "#837476", "#9a8675", "#b39971",
            "#ccac6a", "#e6c15c", "#fee838"]
# The headline cards (PublicTest and PrivateTest), in order: TFMA's metric name -> its label. The
# reader passes on every metric the EvalConfig computes, so a new one shows once it is listed here.
HEADLINE = {ACCURACY: "accuracy", TOP2: "top-2 accuracy", MACRO_F1: "macro-F1", ECE: "calibration error (ECE)"}
LABELS = {**HEADLINE, COUNT: "examples"}
LOWER_IS_BETTER = {ECE}


def _e(text) -> str:
    return html.escape(str(text))


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cividis(t: float) -> str:
    t = min(max(t, 0.0), 1.0) * (len(_CIVIDIS) - 1)
    low = int(np.floor(t))
    high = min(low + 1, len(_CIVIDIS) - 1)
    a = [int(_CIVIDIS[low][i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(_CIVIDIS[high][i:i + 2], 16) for i in (1, 3, 5)]
    mix = [round(x + (y - x) * (t - low)) for x, y in zip(a, b)]
    return "#%02x%02x%02x" % tuple(mix)


def _text_on(t: float) -> str:
    return "#000" if t > 0.55 else "#fff"


def _bar(value: Optional[float], colour: str, width: int = 120, missing: str = "no examples") -> str:
    if value is None:
        return f'<span class="na">{missing}</span>'
    w = max(0.0, min(1.0, value)) * width
    return (f'<svg class="bar" width="{width}" height="12" role="img" aria-label="{value:.3f}">'
            f'<rect width="{width}" height="12" fill="#eee"/><rect width="{w:.1f}" height="12" fill="{colour}"/></svg>')


def _headline(report: Report) -> str:
    overall = report.slice()
    cards = []
    for name in (*HEADLINE, COUNT):
        value = overall.get(name) if overall else None
        text = str(int(value)) if name == COUNT and value is not None else _fmt(value, 4)
        baseline = ""
        if report.has_baseline and name != COUNT and overall is not None:
            b = overall.get(name, BASELINE)
            if b is not None and value is not None:
                delta = value - b
                better = (delta < 0) if name in LOWER_IS_BETTER else (delta > 0)
                baseline = (f'<div class="base">baseline {_fmt(b, 4)} '
                            f'<span class="{"up" if better else "down" if delta else ""}">({delta:+.4f})</span></div>')
        cards.append(f'<div class="card" data-metric="{_e(name)}"><div class="label">{_e(LABELS[name])}</div>'
                     f'<div class="value">{text}</div>{baseline}</div>')
    if report.blessed is None:
        state = '<span class="badge unknown">blessing unknown</span>'
    elif report.blessed:
        state = '<span class="badge blessed">BLESSED</span>'
    else:
        state = '<span class="badge declined">NOT BLESSED</span>'
    failures = "".join(f"<li>{_e(f)}</li>" for f in report.validation_failures)
    failures = f'<ul class="failures">{failures}</ul>' if failures else ""
    return (f'<section id="headline"><h2>PublicTest (eval split) {state}</h2><div class="cards">{"".join(cards)}</div>'
            f'{failures}<p class="meta">The model was selected on the validation carve of Training; '
            f'PublicTest never chose it.</p></section>')


def _test_split(report: Report) -> str:
    if report.test_overall is None:
        return ""
    cards = "".join(
        f'<div class="card" data-metric="{_e(name)}"><div class="label">{_e(LABELS[name])}</div>'
        f'<div class="value">{_fmt(report.test_overall.get(name), 4)}</div></div>' for name in HEADLINE)
    return (f'<section id="test-split"><h2>PrivateTest (test split, reported only)</h2>'
            f'<div class="cards">{cards}</div></section>')


def _per_class(report: Report) -> str:
    overall = report.slice()
    rows = []
    for class_id, name in enumerate(features.CLASS_NAMES):
        label_slice = report.slice((features.LABEL_KEY, class_id))
        support = label_slice.count() if label_slice else 0
        cells = [f'<td class="name">{_e(name)}</td>', f'<td class="num">{support}</td>']
        for metric in PER_CLASS:
            value = overall.get(metric, class_id=class_id) if overall else None
            missing = "never predicted" if metric == "precision" and support else "no examples"
            cells.append(f'<td class="num">{_fmt(value)}</td><td>{_bar(value, CANDIDATE_COLOUR, 80, missing)}</td>')
        top2 = label_slice.get(TOP2) if label_slice else None
        cells.append(f'<td class="num">{_fmt(top2)}</td>')
        if report.has_baseline:
            base = overall.get("recall", BASELINE, class_id) if overall else None
            cells.append(f'<td class="num">{_fmt(base)}</td>')
        rows.append(f'<tr class="class-row" data-class="{_e(name)}">{"".join(cells)}</tr>')
    head = ("<th>emotion</th><th>examples</th><th colspan=2>precision</th><th colspan=2>recall</th>"
            "<th colspan=2>F1</th><th>top-2 within class</th>" + ("<th>baseline recall</th>" if report.has_baseline else ""))
    return (f'<section id="per-class"><h2>Per emotion</h2><table class="per-class"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table><p class="note">Precision, recall and F1 treat the arg-max as '
            f'the prediction; precision is "–" for a class that was never predicted.</p></section>')


def _confusion(report: Report) -> str:
    overall = report.slice()
    counts = overall.confusion.get(CANDIDATE) if overall else None
    if counts is None:
        return '<section id="confusion"><h2>Confusion matrix</h2><p class="na">not computed</p></section>'
    n = features.NUM_CLASSES
    rows_total = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows_total, out=np.zeros_like(counts), where=rows_total > 0)
    cell, left, top = 58, 90, 80
    parts = [f'<svg id="cm" width="{left + n * cell + 10}" height="{top + n * cell + 10}" role="img" '
             f'aria-label="confusion matrix">']
    for j, name in enumerate(features.CLASS_NAMES):
        x = left + j * cell + cell / 2
        parts.append(f'<text class="axis" x="{x}" y="{top - 8}" transform="rotate(-35 {x} {top - 8})">{_e(name)}</text>')
    for i, name in enumerate(features.CLASS_NAMES):
        y = top + i * cell
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end">{_e(name)}</text>')
        for j in range(n):
            x = left + j * cell
            t = float(rates[i, j])
            parts.append(
                f'<g class="cm-cell" data-actual="{i}" data-predicted="{j}" data-count="{int(counts[i, j])}" '
                f'data-rate="{t:.4f}"><rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{_cividis(t)}"/><text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                f'fill="{_text_on(t)}" class="cm-text">{int(counts[i, j])}</text>'
                f'<title>actual {_e(name)}, predicted {_e(features.CLASS_NAMES[j])}: {int(counts[i, j])} '
                f'({t:.1%} of the row)</title></g>')
    parts.append("</svg>")
    return ('<section id="confusion"><h2>Confusion matrix</h2><p>Rows: true emotion; columns: predicted '
            '(arg-max). Colour: share of the row. <label><input type="checkbox" id="cm-rates"> show row rates '
            'instead of counts</label></p>' + "".join(parts) + "</section>")


def _bucket_section(report: Report, column: str, names: Sequence[str], title: str, section_id: str) -> str:
    rows = []
    for value, (name, entry) in enumerate(zip(names, report.bucket_slices(column, len(names)))):
        count = entry.count() if entry else 0
        accuracy = entry.get(ACCURACY) if entry else None
        top2 = entry.get(TOP2) if entry else None
        ece = entry.get(ECE) if entry else None
        base = ""
        if report.has_baseline:
            b = entry.get(ACCURACY, BASELINE) if entry else None
            base = f'<td class="num">{_fmt(b)}</td><td>{_bar(b, BASELINE_COLOUR)}</td>'
        rows.append(f'<tr class="bucket-row" data-bucket="{value}"><td class="name">{_e(name)}</td>'
                    f'<td class="num">{count}</td><td class="num">{_fmt(accuracy)}</td>'
                    f'<td>{_bar(accuracy, CANDIDATE_COLOUR)}</td><td class="num">{_fmt(top2)}</td>'
                    f'<td class="num">{_fmt(ece)}</td>{base}</tr>')
    base_head = "<th colspan=2>baseline accuracy</th>" if report.has_baseline else ""
    return (f'<section id="{section_id}"><h2>{_e(title)}</h2><table class="buckets"><thead><tr><th>quartile</th>'
            f'<th>examples</th><th colspan=2>accuracy</th><th>top-2</th><th>ECE</th>{base_head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _emotion_by_lighting(report: Report) -> str:
    head = "".join(f"<th>{_e(n)}</th>" for n in features.LIGHTING_BUCKET_NAMES)
    rows = []
    for class_id, name in enumerate(features.CLASS_NAMES):
        cells = []
        for bucket in range(features.NUM_QUANTILE_BUCKETS):
            entry = report.slice((features.LABEL_KEY, class_id), (features.LIGHTING_BUCKET_KEY, bucket))
            accuracy = entry.get(ACCURACY) if entry else None
            if accuracy is None:
                cells.append('<td class="na">no examples</td>')
            else:
                cells.append(f'<td class="heat" style="background:{_cividis(accuracy)};color:{_text_on(accuracy)}">'
                             f'{accuracy:.2f}<span class="n"> n={entry.count()}</span></td>')
        rows.append(f'<tr><td class="name">{_e(name)}</td>{"".join(cells)}</tr>')
    return (f'<section id="emotion-lighting"><h2>Accuracy by emotion × lighting</h2><table class="cross">'
            f'<thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _class_balance(report: Report) -> str:
    balance = report.class_balance
    if not balance:
        return '<section id="class-balance"><h2>Class balance</h2><p class="na">no report in this run</p></section>'
    splits = [s for s in features.SPLITS if s in balance.get("splits", {})]
    head = "".join(f"<th colspan=2>{_e(s)}</th>" for s in splits)
    rows = []
    for name in features.CLASS_NAMES:
        cells = []
        for split in splits:
            info = balance["splits"][split]["classes"].get(name, {"count": 0, "share": 0.0})
            flag = " low" if name in balance["splits"][split].get("below_min_share", []) else ""
            cells.append(f'<td class="num{flag}">{info["count"]}</td><td>{_bar(info["share"] * 4, "#56B4E9", 80)}'
                         f' <span class="n">{info["share"]:.1%}</span></td>')
        rows.append(f'<tr><td class="name">{_e(name)}</td>{"".join(cells)}</tr>')
    findings = "".join(f"<li>{_e(f)}</li>" for f in balance.get("findings", []))
    return (f'<section id="class-balance"><h2>Class balance (validation step)</h2><table class="balance"><thead>'
            f'<tr><th>emotion</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<ul class="findings">{findings}</ul></section>')


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:18px;margin-top:28px} .meta{color:#555;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .label{font-size:12px;color:#555}.card .value{font-size:24px;font-weight:600}.card .base{font-size:12px;color:#555}
.up{color:#0072B2;font-weight:600}.down{color:#D55E00;font-weight:600}
.badge{font-size:13px;padding:3px 8px;border-radius:4px;margin-left:8px;vertical-align:middle}
.blessed{background:#0072B2;color:#fff}.declined{background:#D55E00;color:#fff}.unknown{background:#999;color:#fff}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.na{color:#888;font-style:italic}.n{font-size:11px;opacity:.8}
td.heat{text-align:center;min-width:90px}td.low{color:#D55E00;font-weight:600}.note{font-size:12px;color:#555}
text.axis{font-size:12px;fill:#333}text.cm-text{font-size:12px}.legend span{display:inline-block;width:14px;height:10px}
"""

_SCRIPT = """
(function(){
  var toggle=document.getElementById('cm-rates');
  function show(){
    var cells=document.querySelectorAll('#cm .cm-cell');
    for(var i=0;i<cells.length;i++){
      var c=cells[i], t=c.querySelector('text');
      t.textContent = toggle.checked ? (Math.round(parseFloat(c.dataset.rate)*100)+'%') : c.dataset.count;
    }
  }
  if(toggle){toggle.addEventListener('change',show);show();}
  document.body.setAttribute('data-ready','1');
})();
"""


def render(report: Report) -> str:
    models = " vs ".join(report.models)
    legend = ""
    if report.has_baseline:
        legend = (f'<p class="legend"><span style="background:{CANDIDATE_COLOUR}"></span> candidate '
                  f'<span style="background:{BASELINE_COLOUR}"></span> baseline (latest blessed model)</p>')
    body = [
        f"<h1>FER model analysis</h1><div class=\"meta\">run {_e(report.run_dir)} · evaluation "
        f"{_e(report.evaluation_uri)} · models: {_e(models)} · eval split</div>{legend}",
        _headline(report),
        _test_split(report),
        _per_class(report),
        _confusion(report),
        _bucket_section(report, features.LIGHTING_BUCKET_KEY, features.LIGHTING_BUCKET_NAMES,
                        "By lighting (mean brightness quartiles of the training faces)", "lighting"),
        _bucket_section(report, features.CONTRAST_BUCKET_KEY, features.CONTRAST_BUCKET_NAMES,
                        "By contrast (pixel standard-deviation quartiles)", "contrast"),
        _emotion_by_lighting(report),
        _class_balance(report),
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>FER model analysis</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}<script>{_SCRIPT}</script></body></html>")


def write(report: Report, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(report))
    return path
