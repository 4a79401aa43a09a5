"""``report.html`` drawn from a :class:`~pixelwise.training.report.RunReport`: one file that opens anywhere.

Every picture is a PNG inside the page (a ``data:`` URI) and the style sheet is inline; nothing needs
JavaScript or the network, so the file can be mailed, archived or attached to an issue as it is. Every
text from the run (class names, file names, recipe values) is escaped, so no name can break the page.

>>> table(["class", "IoU"], [["<sky>", "91.0%"]])
'<table><tr><th>class</th><th>IoU</th></tr><tr><td>&lt;sky&gt;</td><td>91.0%</td></tr></table>'
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pixelwise.core.errors import DataError
from pixelwise.core.version import __version__
from pixelwise.core.viz import (
    class_shares_figure,
    colorize,
    confusion_figure,
    curves_figure,
    figure_png,
    heatmap,
    overlay,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.data.fingerprint import Fingerprint

if TYPE_CHECKING:  # for the annotations only: report imports this module to write the page
    from pixelwise.training.report import ImageReview, RunReport, ValReview

PANELS = ("image", "truth", "prediction", "uncertainty")  # the pictures of each example image

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1320px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.summary { color: #555; } .note { color: #666; font-size: .9em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { padding: .25em .7em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #bbb; }
.swatch { display: inline-block; width: .9em; height: .9em; margin-right: .4em; border: 1px solid #666;
          vertical-align: -.1em; }
img { max-width: 100%; } .examples td { vertical-align: top; }
.examples img { width: 280px; image-rendering: pixelated; }  /* small images enlarged, pixels kept sharp */
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def pct(value: float | None) -> str:
    """``0.8123`` as ``81.23%``; a missing value (None, NaN) as ``-``."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{esc(alt)}">'


def image_png(rgb: np.ndarray) -> bytes:
    """An RGB uint8 picture as PNG bytes."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"could not encode a {rgb.shape} picture as PNG")
    return encoded.tobytes()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], raw: bool = False, css: str = "") -> str:
    """An HTML table of text cells (escaped, unless ``raw``: cells that are already HTML) of CSS class ``css``."""
    cell = (lambda c: c) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    opening = f'<table class="{css}">' if css else "<table>"
    return f"{opening}<tr>{head}</tr>{body}</table>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def plain(value: Any) -> str:
    """A recipe value as text: strings as they are, anything else as JSON (``null``, ``[32, 48]``, ``{...}``)."""
    return value if isinstance(value, str) else json.dumps(value)


def recipe_section(config: dict[str, Any]) -> str:
    rows = [[key, plain(value)] for key, value in config.items()]
    return section("recipe", "Recipe (config.yaml)", table(["key", "value"], rows))


def plan_section(plan: list[dict[str, Any]]) -> str:
    rows = [[plain(c.get("key", "")), plain(c.get("value")), plain(c.get("source", "")), plain(c.get("reason", ""))]
            for c in plan]
    note = '<p class="note">What the planner chose and why; <i>given</i> values came from the user.</p>'
    return section("plan", "Plan (plan.yaml)", note + table(["key", "value", "source", "reason"], rows))


def curves_section(history: list[dict[str, Any]]) -> str:
    return section("curves", "Training curves (metrics.csv)", img(figure_png(curves_figure(history)), "curves"))


def swatch(colour: Sequence[int]) -> str:
    r, g, b = (int(c) for c in colour)
    return f'<span class="swatch" style="background: #{r:02x}{g:02x}{b:02x}"></span>'


def metrics_section(metrics: dict[str, Any], classes: ClassSpec, epoch: Any) -> str:
    """The best epoch's per-class table, as ``format_table`` prints it, with each class's colour."""
    colours = dict(zip(classes.names, classes.palette, strict=True))
    rows = [f"<tr><td>{swatch(colours.get(name, (255, 255, 255)))}{esc(name)}</td>"
            + "".join(f'<td class="num">{pct(m[k])}</td>' for k in ("iou", "dice", "accuracy"))
            + f'<td class="num">{m["pixels"]}</td></tr>' for name, m in metrics["per_class"].items()]
    rows.append(f'<tr class="total"><td>mean (mIoU, Dice, class accuracy)</td><td class="num">{pct(metrics["miou"])}'
                f'</td><td class="num">{pct(metrics["mean_dice"])}</td>'
                f'<td class="num">{pct(metrics["mean_accuracy"])}</td><td></td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("class", "IoU", "Dice", "accuracy", "pixels"))
    body = (f'<p class="summary">Validation metrics of epoch {esc(epoch)}; pixel accuracy '
            f'{pct(metrics["pixel_accuracy"])}.</p><table class="per-class"><tr>{head}</tr>{"".join(rows)}</table>')
    return section("metrics", "Best epoch, per class (best_metrics.json)", body)


def confusion_section(review: ValReview, names: list[str]) -> str:
    note = (f'<p class="note">Over {review.reviewed} of the {review.total} validation images; each row is a true '
            "class, split by what the model predicted.</p>")
    return section("confusion", "Confusion matrix (best checkpoint)",
                   note + img(figure_png(confusion_figure(review.confusion, names)), "confusion matrix"))


def example_rows(reviews: list[ImageReview], classes: ClassSpec) -> str:
    """One table row per image: image | truth | prediction over the image | uncertainty."""
    palette = classes.palette
    rows = []
    for r in reviews:
        panels = (r.image, colorize(r.truth, palette), overlay(r.image, r.prediction, palette), heatmap(r.uncertainty))
        cells = [f"<b>{esc(r.name)}</b><br>mIoU {pct(r.miou)}"]
        cells += [img(image_png(p), f"{r.name}: {kind}") for p, kind in zip(panels, PANELS, strict=True)]
        rows.append(cells)
    if not rows:
        return '<p class="note">No image to show here (see the other list).</p>'
    return table(["", *PANELS], rows, raw=True, css="examples")


def examples_section(review: ValReview, classes: ClassSpec) -> str:
    note = ('<p class="note">Validation images ranked by their own mIoU. Colours as in the per-class table; '
            "uncertainty is the entropy of the predicted class probabilities over log(number of classes): "
            "dark = certain, bright = a guess.</p>")
    best = section("best", f"Best {len(review.best)} validation images", example_rows(review.best, classes))
    worst = section("worst", f"Worst {len(review.worst)} validation images", example_rows(review.worst, classes))
    return note + best + "\n" + worst


def fingerprint_section(fingerprint: Fingerprint | None, note: str) -> str:
    if fingerprint is None:
        return section("fingerprint", "Dataset fingerprint", f'<p class="note">Not available: {esc(note)}</p>')
    shares = {c.name: c.pixel_share for c in fingerprint.classes}
    chart = figure_png(class_shares_figure(shares, title="pixel share per class (training split)"))
    body = f"<pre>{esc(fingerprint.format_text())}</pre>\n{img(chart, 'class pixel shares')}"
    return section("fingerprint", "Dataset fingerprint (training split)", body)


def render_report(report: RunReport) -> str:
    """The whole page, as text."""
    meta, metrics = report.meta, report.best_metrics
    classes = meta.classes
    epoch = meta.extra.get("epoch", "?")
    size = f"{meta.input_size[0]}x{meta.input_size[1]}" if meta.input_size else "as stored"
    score_class = report.config.get("score_class")  # binary problems: the class that picked the best epoch
    foreground = (f", {esc(score_class)} IoU {pct(metrics['per_class'][score_class]['iou'])}"
                  if score_class in metrics.get("per_class", {}) else "")
    summary = (f"{esc(meta.model)}, {classes.num_classes} classes, input {size}; epochs trained: "
               f"{len(report.history)}, best val mIoU {pct(metrics.get('miou'))}{foreground} at epoch {esc(epoch)}. "
               f"Written {time.strftime('%Y-%m-%d %H:%M')} by pixelwise {esc(__version__)}.")
    parts = [f"<h1>Run report: {esc(report.run_dir.name or report.run_dir)}</h1>",
             f'<p class="summary">{summary}</p>', recipe_section(report.config)]
    if report.plan is not None:
        parts.append(plan_section(report.plan))
    parts += [curves_section(report.history), metrics_section(metrics, classes, epoch),
              confusion_section(report.review, classes.names), examples_section(report.review, classes),
              fingerprint_section(report.fingerprint, report.fingerprint_note)]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>pixelwise run: '
            f"{esc(report.run_dir.name)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
