"""RUN/report.html: one self-contained page written when training ends; a failing report never fails the run."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest
import yaml

from pixelwise.testing import TINY_MODEL, run_main
from pixelwise.training import report_html
from pixelwise.training.config import TrainConfig
from pixelwise.training.report import REPORT, write_report
from pixelwise.training.trainer import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a test needs of the page: section ids, images by alt text, per-class rows, outside references."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}  # id -> alt texts of the images inside it
        self.images: dict[str, str] = {}  # alt -> src
        self.per_class_rows: list[list[str]] = []
        self.external: list[str] = []  # scripts, links and sources that are not data URIs
        self._section: str | None = None
        self._table: str | None = None
        self._row: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a["id"]
            self.sections[self._section] = []
        elif tag == "table":
            self._table = a.get("class")
        elif tag == "tr" and self._table == "per-class":
            self._row = []
            self.per_class_rows.append(self._row)
        elif tag == "img":
            self.images[a["alt"]] = a["src"]
            self.sections[self._section].append(a["alt"])
        if tag == "script" or tag == "link" or any(k in ("src", "href") and not (v or "").startswith("data:")
                                                      for k, v in attrs):
            self.external.append(f"<{tag} {attrs}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def png_of(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,"), src[:40]
    return base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)


@pytest.fixture(scope="module")
def cli_run(tiny_data, tmp_path_factory):
    """One epoch through `pixelwise train` (what users run): the run folder and what it printed."""
    run = tmp_path_factory.mktemp("report") / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(run), "--epochs", "1", "--img-size", "32x48",
                      "--batch-size", "4", "--workers", "0", "--precision", "fp32", "--lr", "3e-3", "--no-progress",
                      *[f"--model-option={k}={v}" for k, v in TINY_MODEL.items()])
    assert result.returncode == 0, result.stderr
    return run, result.stdout


def test_train_ends_by_naming_the_report(cli_run):
    run, stdout = cli_run
    assert stdout.strip().splitlines()[-1] == f"report: {run / REPORT}"
    assert "warning" not in stdout


def test_the_report_is_one_self_contained_page(cli_run):
    run, _ = cli_run
    page = Page((run / REPORT).read_text())
    assert page.external == []  # opens offline: no script, style sheet or picture outside the file
    for alt in ("curves", "confusion matrix", "class pixel shares"):
        assert png_of(page.images[alt]).startswith(PNG_MAGIC), alt
    assert {"recipe", "curves", "metrics", "confusion", "best", "worst", "fingerprint"} <= set(page.sections)
    assert "plan" not in page.sections  # no plan.yaml in this run


def test_the_per_class_table_is_the_best_epochs(cli_run):
    run, _ = cli_run
    best = json.loads((run / "best_metrics.json").read_text())
    page = Page((run / REPORT).read_text())
    rows = {row[0]: row[1:] for row in page.per_class_rows[1:]}  # the first row is the header
    for name, m in best["per_class"].items():
        iou = "-" if m["iou"] is None else f"{100 * m['iou']:.2f}%"
        assert rows[name][0] == iou and rows[name][-1] == str(m["pixels"]), name
    assert f"{100 * best['miou']:.2f}%" in rows["mean (mIoU, Dice, class accuracy)"]


def test_best_and_worst_images_each_show_four_pictures(cli_run):
    run, _ = cli_run
    page = Page((run / REPORT).read_text())
    best, worst = page.sections["best"], page.sections["worst"]
    # tiny_data has 4 validation images: the better 2 and the worse 2, each image | truth | prediction | uncertainty.
    assert len(best) == len(worst) == 2 * 4
    assert not {a.split(":")[0] for a in best} & {a.split(":")[0] for a in worst}
    assert [a.split(": ")[1] for a in best[:4]] == ["image", "truth", "prediction", "uncertainty"]
    assert all(png_of(page.images[a]).startswith(PNG_MAGIC) for a in best + worst)


def test_a_finished_run_gets_its_plan_rendered(cli_run):
    run, _ = cli_run
    plan = [{"key": "img_size", "value": "32x48", "reason": "keeps the aspect <1.5>", "source": "planned"},
            {"key": "epochs", "value": 1, "reason": "given", "source": "given"}]
    (run / "plan.yaml").write_text(yaml.safe_dump(plan))
    try:
        path = write_report(run)  # the dataset opened again, as config.yaml says
    finally:
        (run / "plan.yaml").unlink()
    text = path.read_text()
    assert "plan" in Page(text).sections
    assert "keeps the aspect &lt;1.5&gt;" in text  # the reason, escaped


def test_a_failing_report_leaves_the_run_intact(tiny_data, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("the plot broke")

    monkeypatch.setattr(report_html, "confusion_figure", broken)
    config = TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), img_size=(32, 48), batch_size=4, workers=0,
                         progress=False, model_kwargs=TINY_MODEL, precision="fp32", epochs=1)
    result = train(config)
    run = tmp_path / "run"
    assert result.report is None and result.epochs_done == 1 and result.stop_reason == "epochs done"
    assert not (run / REPORT).exists()
    for name in ("best.safetensors", "best_metrics.json", "metrics.csv", "config.yaml", "last/state.pt"):
        assert (run / name).is_file(), name
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "the plot broke" in warnings[0], warnings
