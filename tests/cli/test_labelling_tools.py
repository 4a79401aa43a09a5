"""The labelling-tool round trip through the CLI: a dataset converted to each tool's import file, a
Label Studio export inspected, converted and trained on, and ``predict --to`` read back to the labels
``predict`` wrote. Parametrised over the pre-annotation registry, so a new writer is covered by itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pixelwise.data.formats import open_dataset
from pixelwise.data.io import read_mask
from pixelwise.data.preannotations import list_preannotation_formats
from pixelwise.testing import assert_one_line_error, run_main

pytest.importorskip("pycocotools")  # the coco writer encodes with it

# The --format that reads each writer's output back, where it is not the writer's own name.
READ_BACK = {"coco": "coco:ann=coco_predictions.json"}
TRAIN = ["--img-size", "32x48", "--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32",
         "--model-option", "base_filters=4", "--model-option", "depth=3"]


def ids_by_stem(root: Path, format: str, classes=None) -> dict[str, np.ndarray]:
    index = open_dataset(root, format, classes)
    return {s.image.stem: index.reader.load(s)[1] for samples in index.splits.values() for s in samples}


@pytest.fixture(scope="module")
def label_studio_run(tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """``tiny_data`` as a Label Studio task file (``datasets convert --target label-studio``), and a model
    trained on it for one epoch (``train`` reading the label-studio format)."""
    root = tmp_path_factory.mktemp("ls")
    converted = run_main("datasets", "convert", str(tiny_data), "--to", str(root / "ls"), "--target", "label-studio")
    assert converted.returncode == 0, converted.stderr
    trained = run_main("train", "--data", str(root / "ls"), "--epochs", "1", "--out", str(root / "run"), *TRAIN)
    assert trained.returncode == 0, trained.stderr
    return root / "ls", root / "run" / "best.safetensors"


@pytest.mark.parametrize("name", list_preannotation_formats())
def test_convert_to_each_tool_reads_back_the_same_labels(tiny_data, tmp_path, name):
    result = run_main("datasets", "convert", str(tiny_data), "--to", str(tmp_path / name), "--target", name)
    assert result.returncode == 0, result.stderr
    source = ids_by_stem(tiny_data, "auto")
    back = ids_by_stem(tmp_path / name, READ_BACK.get(name, name))
    assert set(back) == set(source)
    for stem, ids in source.items():
        assert (back[stem] == ids).all(), stem
    index = open_dataset(tmp_path / name, READ_BACK.get(name, name))
    assert index.classes.names == open_dataset(tiny_data).classes.names  # classes.yaml travels with it
    assert {s.image.stem for s in index.splits["val"]} == {p.stem for p in (tiny_data / "images" / "val").iterdir()}


def test_label_studio_export_through_inspect_convert_and_train(label_studio_run, tiny_data, tmp_path):
    ls, checkpoint = label_studio_run
    assert checkpoint.is_file()  # train read the label-studio format
    inspected = run_main("datasets", "inspect", str(ls), "--no-fingerprint")
    assert inspected.returncode == 0, inspected.stderr
    assert "label-studio" in inspected.stdout
    converted = run_main("datasets", "convert", str(ls), "--to", str(tmp_path / "folders"))
    assert converted.returncode == 0, converted.stderr
    source = ids_by_stem(tiny_data, "auto")
    for stem, ids in ids_by_stem(tmp_path / "folders", "folders").items():
        assert (ids == source[stem]).all(), stem


@pytest.mark.parametrize("name", list_preannotation_formats())
def test_predict_to_each_tool_reads_back_predicts_labels(label_studio_run, tiny_data, tmp_path, name):
    _, checkpoint = label_studio_run
    val = tiny_data / "images" / "val"
    out = tmp_path / "preds"
    result = run_main("predict", str(checkpoint), str(val), "--out", str(out), "--to", name, "--workers", "0",
                      "--save-uncertainty")
    assert result.returncode == 0, result.stderr
    assert f"{name} pre-annotations of 4 images" in result.stdout
    shutil.copytree(val, out / "images")  # the tool's file names the images; pixelwise looks in images/
    # The model's classes, as a user reading the corrected labels back would give them: CVAT, for one, has no
    # class 0 of its own, so without them its reader puts a 'background' first
    back = ids_by_stem(out, READ_BACK.get(name, name), open_dataset(tiny_data).classes)
    assert set(back) == {p.stem for p in val.iterdir()}
    assert len(np.unique(np.concatenate([ids.ravel() for ids in back.values()]))) >= 2  # not all one class
    for stem, ids in back.items():
        assert (ids == read_mask(out / f"{stem}_labels.png")).all(), stem
    again = run_main("predict", str(checkpoint), str(val), "--out", str(out), "--to", name, "--workers", "0")
    assert_one_line_error(again, "already exists")


def test_predict_to_label_studio_names_the_model_and_scores(label_studio_run, tiny_data, tmp_path):
    _, checkpoint = label_studio_run
    result = run_main("predict", str(checkpoint), str(tiny_data / "images" / "val"), "--out", str(tmp_path),
                      "--to", "label-studio", "--workers", "0", "--save-uncertainty")
    assert result.returncode == 0, result.stderr
    predictions = [t["predictions"][0] for t in json.loads((tmp_path / "label_studio_predictions.json").read_text())]
    assert {p["model_version"] for p in predictions} == {"run/best.safetensors"}
    assert all(0 <= p["score"] <= 1 for p in predictions)


def test_bad_input_is_one_error_line(label_studio_run, tmp_path, tiny_data):
    ls, checkpoint = label_studio_run
    broken = tmp_path / "broken"
    shutil.copytree(ls, broken)
    name = sorted((broken / "images").iterdir())[0]
    name.rename(broken / "images" / "elsewhere.png")
    assert_one_line_error(run_main("datasets", "inspect", str(broken)), "label_studio_predictions.json", "task",
                          name.name, "is not in")
    assert_one_line_error(run_main("train", "--data", str(ls), "--format", "label-studio:annotator=x", "--epochs",
                                   "1", "--out", str(tmp_path / "run"), *TRAIN), "annotator=x", "predictions are read")
    assert_one_line_error(run_main("predict", str(checkpoint), str(tiny_data / "images" / "val"), "--out",
                                   str(tmp_path / "p"), "--to", "labelbox"), "labelbox", "label-studio")
    assert not (tmp_path / "p").exists()  # refused before predicting anything
    assert_one_line_error(run_main("datasets", "convert", str(ls), "--to", str(tmp_path / "c"), "--target", "x"),
                          "unknown --target 'x'", "label-studio")

