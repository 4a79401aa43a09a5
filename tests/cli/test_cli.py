"""The command line end to end, and every bad-input case: one line, non-zero exit, no traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.testing import assert_one_line_error, run_cli, run_main

TRAIN = ["--img-size", "32x48", "--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32"]


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One real CLI training run shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    recipe = root / "recipe.yaml"
    recipe.write_text("model_kwargs: {base_filters: 4, depth: 3}\nlr: 0.003\n")
    out = run_cli("train", "--config", str(recipe), "--data", str(tiny_data), "--epochs", "2", "--out",
                  str(root / "run"), *TRAIN)
    assert out.returncode == 0, out.stderr
    return root, out


def test_train_evaluate_predict(trained, tiny_data):
    root, out = trained
    assert "best val mIoU" in out.stdout and "pavement" in out.stdout
    ckpt = root / "run" / "best.safetensors"
    assert ckpt.is_file()

    ev = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--split", "val", "--json", str(root / "m.json"))
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads((root / "m.json").read_text())
    assert set(metrics) >= {"miou", "pixel_accuracy", "mean_accuracy", "per_class"}
    assert 0 <= metrics["miou"] <= 1 and set(metrics["per_class"]["road"]) >= {"iou", "dice"}
    assert (root / "m_confusion.png").is_file()
    for name in ["sky", "road", "mIoU"]:
        assert name in ev.stdout

    images = sorted((tiny_data / "images" / "val").iterdir())
    pred = run_cli("predict", str(ckpt), str(images[0]), str(tiny_data / "images" / "val" / "*.png"),
                   "--out", str(root / "pred"))
    assert pred.returncode == 0, pred.stderr
    labels = np.array(Image.open(root / "pred" / f"{images[0].stem}_labels.png"))
    assert labels.shape == (48, 64) and labels.max() < 6
    # The trained checkpoint, loaded here, labels the image exactly as the fresh `predict` process did.
    from pixelwise.inference.predictor import Predictor

    assert np.array_equal(Predictor(ckpt).predict(images[0]), labels)
    assert Image.open(root / "pred" / f"{images[1].stem}_overlay.png").size == (64, 48)
    assert not (root / "pred" / f"{images[1].stem}_color.png").exists()  # labels + overlay unless --outputs says
    again = run_main("predict", str(ckpt), str(images[0]), "--out", str(root / "pred"))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_help_has_examples():
    for command in ["train", "evaluate", "predict", "demo", "models", "serve"]:
        out = run_main(command, "--help")
        assert out.returncode == 0 and "pixelwise " + command in out.stdout


def test_models_lists_every_registered_model():
    import pixelwise

    out = run_main("models")
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert out.returncode == 0 and listed == pixelwise.list_models() and "unet" in listed


def copy_data(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def bad_train(data, tmp_path, *extra):
    return run_main("train", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run"), *TRAIN, *extra)


def test_bad_data(tiny_data, tmp_path):
    assert_one_line_error(bad_train(tmp_path / "missing", tmp_path), "missing", "data folder not found")

    data = copy_data(tiny_data, tmp_path / "nomask")
    (data / "masks" / "train" / "train_0003.png").unlink()
    assert_one_line_error(bad_train(data, tmp_path), "train_0003.png", "has no mask")

    data = copy_data(tiny_data, tmp_path / "noimage")
    (data / "images" / "val" / "val_0001.png").unlink()
    assert_one_line_error(bad_train(data, tmp_path), "val_0001.png", "has no image")

    data = copy_data(tiny_data, tmp_path / "emptyval")
    for split in ["images", "masks"]:
        for f in (data / split / "val").iterdir():
            f.unlink()
    assert_one_line_error(bad_train(data, tmp_path), "split 'val' is empty")

    data = copy_data(tiny_data, tmp_path / "size")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(data / "masks" / "train" / "train_0002.png")
    assert_one_line_error(bad_train(data, tmp_path), "train_0002.png", "must match")

    data = copy_data(tiny_data, tmp_path / "values")
    Image.fromarray(np.full((48, 64), 9, np.uint8)).save(data / "masks" / "val" / "val_0000.png")
    assert_one_line_error(bad_train(data, tmp_path), "val_0000.png", "mask value 9")

    data = copy_data(tiny_data, tmp_path / "corrupt")
    (data / "images" / "train" / "train_0004.png").write_bytes(b"\x89PNG garbage")
    assert_one_line_error(bad_train(data, tmp_path), "train_0004.png")
    assert not (tmp_path / "run").exists()  # nothing is created before the checks pass


def test_bad_input_in_a_real_process(tmp_path):
    """The same contract holds for the installed command in a fresh process (exit code and stderr)."""
    assert_one_line_error(run_cli("train", "--data", str(tmp_path / "nowhere"), "--epochs", "1"), "nowhere")


def test_bad_options(tiny_data, tmp_path):
    assert_one_line_error(bad_train(tiny_data, tmp_path, "--model", "unetz"), "unknown model 'unetz'")
    assert_one_line_error(bad_train(tiny_data, tmp_path, "--img-size", "big"), "img_size")
    assert_one_line_error(run_main("train", "--colour", "red"), "No such option")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochz: 3\n")
    assert_one_line_error(run_main("train", "--config", str(recipe), "--data", str(tiny_data)), "r.yaml", "epochz")


def test_bad_checkpoint_and_earlier_run_kept(trained, tiny_data, tmp_path):
    root, _ = trained
    ckpt = root / "run" / "best.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(ckpt.read_bytes()[:1000])
    assert_one_line_error(run_main("evaluate", str(cut), "--data", str(tiny_data)), "cut.safetensors", "truncated")
    assert_one_line_error(run_main("predict", str(cut), str(tiny_data / "images" / "val"), "--out",
                                  str(tmp_path / "p")), "cut.safetensors")
    before = ckpt.read_bytes()
    again = run_main("train", "--data", str(tiny_data), "--epochs", "1", "--out", str(root / "run"), *TRAIN)
    assert_one_line_error(again, "already holds files")
    assert ckpt.read_bytes() == before


def test_evaluate_with_tta_scores_what_predict_with_tta_makes(trained, tiny_data):
    """`evaluate --tta-flip` writes eval_val_tta.json (the plain score stays) whose confusion matrix is that
    of `Predictor(tta_flip=True)`'s labels against the val masks."""
    from pixelwise.core.metrics import ConfusionMatrix
    from pixelwise.inference.predictor import Predictor

    root, _ = trained
    ckpt = root / "run" / "best.safetensors"
    ev = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--tta-flip", "--precision", "fp32")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads((root / "run" / "eval_val_tta.json").read_text())
    assert metrics["tta"] == {"flip": True, "scales": [1.0]}
    predictor = Predictor(ckpt, precision="fp32", tta_flip=True)
    cm = ConfusionMatrix(6, predictor.classes.names)
    import torch

    for image in sorted((tiny_data / "images" / "val").iterdir()):
        mask = np.array(Image.open(tiny_data / "masks" / "val" / image.name))
        cm.update(torch.from_numpy(predictor.predict(image).astype(np.int64)), torch.from_numpy(mask.astype(np.int64)))
    assert metrics["miou"] == pytest.approx(cm.compute()["miou"], abs=1e-6)
    bad = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--tta-scales", "0,1")
    assert bad.returncode == 2 and "--tta-scales" in bad.stderr
