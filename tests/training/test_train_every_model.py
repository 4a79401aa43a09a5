"""Every registered model trains, evaluates and predicts end to end through the CLI (tiny settings); train leaves its
OpenVINO IR, which predict runs."""

from __future__ import annotations

import json

import pytest
import yaml

import pixelwise
from pixelwise.core.optional import is_installed
from pixelwise.testing import SMALL_MODEL_OPTIONS as SMALL
from pixelwise.testing import run_main


def model_flags(name: str) -> list[str]:
    flags = ["--model", name]
    for key, value in SMALL[name].items():
        if key == "encoder":
            flags += ["--encoder", value]
        else:
            flags += ["--model-option", f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"]
    return flags


@pytest.mark.slow
@pytest.mark.parametrize("name", pixelwise.list_models())
def test_cli_trains_evaluates_and_predicts(name, tiny_data, tmp_path):
    run = tmp_path / "run"
    trained = run_main("train", "--data", str(tiny_data), "--out", str(run), "--epochs", "1", "--img-size", "32x48",
                       "--batch-size", "4", "--workers", "0", "--no-progress", *model_flags(name))
    assert trained.returncode == 0, trained.stderr
    assert "best val mIoU" in trained.stdout
    checkpoint = run / "best.safetensors"
    assert pixelwise.load_model(checkpoint).meta.model == name
    report_path = tmp_path / "eval" / "metrics.json"
    scored = run_main("evaluate", str(checkpoint), "--data", str(tiny_data), "--json", str(report_path))
    assert scored.returncode == 0, scored.stderr
    report = json.loads(report_path.read_text())
    assert 0.0 <= report["miou"] <= 1.0
    predicted = run_main("predict", str(checkpoint), str(tiny_data / "images" / "val"), "--out", str(tmp_path / "p"),
                         "--workers", "0")
    assert predicted.returncode == 0, predicted.stderr
    assert len(list((tmp_path / "p").glob("*_labels.png"))) == 4
    if is_installed("openvino") and is_installed("onnxscript"):  # train left the IR, and predict ran it
        assert (run / "best.xml").is_file() and "could not write its OpenVINO model" not in trained.stderr
        assert "backend: openvino" in predicted.stdout
