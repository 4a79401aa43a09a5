"""`pixelwise rank`: trained models rank a synthetic ambiguous image first; its files, and its one-line errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import pixelwise
from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import normalize
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import assert_one_line_error, run_cli, run_main

FAST = ("--precision", "fp32", "--backend", "torch", "--workers", "0")


def train_grey_threshold(seed: int, threshold: int) -> tuple[torch.nn.Module, CheckpointMeta]:
    """A tiny U-Net trained (about a second) to call a grey level above ``threshold`` "bright", below it "dark".

    Each training image is two uniform halves of random grey levels 0..255, so the model sees levels on both
    sides of the threshold and its output depends on the input: sure far from ``threshold``, unsure at it.
    """
    torch.manual_seed(seed)
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2, dropout=False)
    meta = CheckpointMeta.for_model(model, ClassSpec.from_lists(["dark", "bright"]), input_size=(16, 16))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(150):
        levels = torch.randint(0, 256, (32, 1, 1, 2), generator=generator).to(torch.uint8)
        images = levels.repeat_interleave(8, dim=3).expand(32, 3, 16, 16)  # left and right halves
        loss = F.cross_entropy(model(normalize(images, meta.mean, meta.std)), (images[:, 0] > threshold).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), meta


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two checkpoints of one task (seeds 0 and 1) and uniform grey images of 40x50 (resized to 16x16).

    Different seeds alone make no provable disagreement, so the two also put the boundary at different greys,
    as two annotators might: 96 and 160. Grey 128 lies between: each model is sure there, of opposite classes.
    """
    folder = tmp_path_factory.mktemp("rank")
    checkpoints = []
    for seed, threshold in [(0, 96), (1, 160)]:
        model, meta = train_grey_threshold(seed, threshold)
        checkpoints.append(folder / f"grey{threshold}.safetensors")
        save_checkpoint(checkpoints[-1], model, meta)
    (folder / "images").mkdir()
    for level in (20, 96, 128, 160, 235):
        Image.fromarray(np.full((40, 50, 3), level, np.uint8)).save(folder / "images" / f"grey{level:03d}.png")
    return checkpoints, folder / "images"


def read_ranking(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_trained_models_depend_on_the_input(trained):
    checkpoints, images = trained
    for path in checkpoints:
        predictor = Predictor(path, precision="fp32", backend="torch")
        assert (predictor.predict(images / "grey020.png") == 0).mean() > 0.8  # dark
        assert (predictor.predict(images / "grey235.png") == 1).mean() > 0.8  # bright
    labels = [Predictor(path, precision="fp32", backend="torch").predict(images / "grey128.png")
              for path in checkpoints]
    assert (labels[0] == 1).mean() > 0.8 and (labels[1] == 0).mean() > 0.8  # 128: above 96, below 160


@pytest.mark.parametrize("by", ["entropy", "margin"])
def test_the_image_at_the_models_boundary_is_ranked_first(trained, tmp_path, by):
    checkpoints, images = trained
    result = run_main("rank", str(checkpoints[0]), str(images), "--by", by, "--out", str(tmp_path / "r.csv"), *FAST)
    assert result.returncode == 0, result.stderr
    rows = read_ranking(tmp_path / "r.csv")
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"] and rows[0]["image"].endswith("grey096.png")
    scores = {r["image"].rsplit("/", 1)[1]: float(r["score"]) for r in rows}
    assert scores["grey096.png"] > 0.4 and scores["grey235.png"] < 0.3, scores  # unsure at 96, sure at 235
    assert [float(r["score"]) for r in rows] == sorted(scores.values(), reverse=True)
    assert all(r["score"] == r[by] for r in rows) and "disagreement" not in rows[0]  # one model: no committee
    assert f"most uncertain first, by {by}:" in result.stdout and "grey096.png" in result.stdout.splitlines()[2]


def test_two_checkpoints_rank_where_they_disagree_first(trained, tmp_path):
    checkpoints, images = trained
    result = run_main("rank", *map(str, checkpoints), str(images), "--by", "disagreement", "--top", "2",
                      "--out", str(tmp_path / "r.csv"), *FAST)
    assert result.returncode == 0, result.stderr
    rows = read_ranking(tmp_path / "r.csv")
    assert len(rows) == 2 and rows[0]["image"].endswith("grey128.png")
    assert list(rows[0]) == ["rank", "image", "score", "entropy", "margin", "disagreement"]
    assert float(rows[0]["disagreement"]) > 0.5 > float(rows[1]["disagreement"])
    # Each model alone is unsure at its own boundary (96 or 160), where the other is sure: less disagreement.
    assert float(rows[0]["disagreement"]) <= float(rows[0]["entropy"])  # entropy = disagreement + members' own
    assert "wrote" in result.stdout and "(2 of 5 images)" in result.stdout


def test_maps_are_predicts_uncertainty_maps(trained, tmp_path):
    checkpoints, images = trained
    ranked = run_main("rank", str(checkpoints[0]), str(images / "grey096.png"), str(images / "grey235.png"),
                      "--out", str(tmp_path / "r.csv"), "--maps", str(tmp_path / "maps"), *FAST)
    assert ranked.returncode == 0, ranked.stderr
    predicted = run_main("predict", str(checkpoints[0]), str(images / "grey096.png"), "--out", str(tmp_path / "p"),
                         "--save-uncertainty", *FAST)
    assert predicted.returncode == 0, predicted.stderr
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["grey096_uncertainty.png",
                                                                      "grey235_uncertainty.png"]
    saved = np.array(Image.open(tmp_path / "maps" / "grey096_uncertainty.png"))
    assert np.array_equal(saved, np.array(Image.open(tmp_path / "p" / "grey096_uncertainty.png")))
    assert saved.mean() > np.array(Image.open(tmp_path / "maps" / "grey235_uncertainty.png")).mean() + 50


def test_bad_input_is_one_error_line_and_writes_nothing(trained, tmp_path):
    checkpoints, images = trained
    out = tmp_path / "r.csv"
    out.write_text("the previous ranking\n")
    assert_one_line_error(run_main("rank", str(checkpoints[0]), str(images), "--by", "disagreement",
                                   "--out", str(out), *FAST), "--by disagreement", "at least 2")
    assert_one_line_error(run_main("rank", *map(str, checkpoints), "--out", str(out)), "all model files")
    assert_one_line_error(run_main("rank", str(checkpoints[0]), str(images), "--by", "variance", "--out", str(out)),
                          "variance", "entropy")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert_one_line_error(run_main("rank", str(checkpoints[0]), str(images), str(broken), "--out", str(out), *FAST),
                          str(broken), "cannot decode")
    model = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2)
    other = tmp_path / "three.safetensors"
    save_checkpoint(other, model, CheckpointMeta.for_model(model, ClassSpec.from_lists(["dark", "bright", "x"])))
    assert_one_line_error(run_cli("rank", str(checkpoints[0]), str(other), str(images), "--by", "disagreement",
                                  "--out", str(out), *FAST), str(other), str(checkpoints[0]), "different classes")
    assert out.read_text() == "the previous ranking\n"
