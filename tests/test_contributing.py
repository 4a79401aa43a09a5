"""CONTRIBUTING.md's four worked examples (a format, a model, a loss, a backend), run exactly as written:
each code block is saved as the plugin module its first line names and used through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixelwise.testing import run_cli

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"
EXAMPLES = {"pairs_format", "tiny_fcn", "focal_loss", "ort_cuda_backend"}


def examples() -> dict[str, str]:
    """``{module name: source}`` of the python blocks whose first line is ``# <module>.py``."""
    blocks = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return dict(blocks)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugins")
    found = examples()
    assert set(found) == EXAMPLES, f"CONTRIBUTING.md's examples changed: {sorted(found)}"
    for name, source in found.items():
        (folder / f"{name}.py").write_text(source)
    return {"PYTHONPATH": str(folder), "PIXELWISE_PLUGINS": ",".join(sorted(found))}


def test_the_examples_appear_in_help(plugins):
    train_help = run_cli("train", "--help", env=plugins)
    predict_help = run_cli("predict", "--help", env=plugins)
    assert train_help.returncode == 0, train_help.stderr
    for name in ("pairs", "tiny_fcn", "focal"):
        assert name in train_help.stdout
    assert "ort_cuda" in predict_help.stdout


def test_format_model_loss_and_backend_work_together(plugins, pairs_data, tmp_path):
    inspected = run_cli("datasets", "inspect", str(pairs_data), env=plugins)
    assert inspected.returncode == 0, inspected.stderr
    assert "pairs" in inspected.stdout  # detected without --format

    run = tmp_path / "run"
    trained = run_cli("train", "--data", str(pairs_data), "--model", "tiny_fcn", "--model-option", "width=8",
                      "--loss", "ce+focal", "--class-weights", "1,1,1,1,1,1", "--epochs", "1", "--img-size", "32x48",
                      "--batch-size", "4", "--precision", "fp32", "--no-progress", "--out", str(run), env=plugins)
    assert trained.returncode == 0, trained.stderr
    scored = run_cli("evaluate", str(run / "best.safetensors"), "--data", str(pairs_data), env=plugins)
    assert scored.returncode == 0, scored.stderr

    predicted = run_cli("predict", str(run / "best.safetensors"), str(pairs_data / "photos"), "--out",
                        str(tmp_path / "labels"), "--backend", "ort_cuda", env=plugins)
    assert predicted.returncode == 0, predicted.stderr
    assert len(list((tmp_path / "labels").glob("*_labels.png"))) == len(list((pairs_data / "photos").iterdir()))
