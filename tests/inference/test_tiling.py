"""Tiled prediction: coverage, Gaussian weights, agreement with whole-image prediction, bounded memory, TTA, CLI."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import pixelwise
from pixelwise.data.presets import get_preset
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.tiling import gaussian_weight, predict_tiled, tile_starts, tiled_logits
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.models.tta import with_tta
from pixelwise.testing import run_main


@pytest.mark.parametrize("length,tile,stride", [(10, 4, 3), (400, 128, 96), (300, 128, 64), (129, 128, 96),
                                                (128, 128, 96), (50, 128, 96), (1000, 7, 1), (17, 5, 5)])
def test_tile_starts_cover_every_pixel_and_end_flush(length, tile, stride):
    starts = tile_starts(length, tile, stride)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + tile] = True
    assert covered.all()
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert starts[-1] + min(tile, length) == length  # the last tile ends at the border, never past it
    assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("h,w", [(128, 128), (96, 160), (7, 5), (1, 1)])
def test_gaussian_weight_symmetric_max_one_positive(h, w):
    g = gaussian_weight(h, w)
    assert g.shape == (h, w) and g.dtype == torch.float32
    assert torch.equal(g, g.flip(0)) and torch.equal(g, g.flip(1))
    assert float(g.max()) == pytest.approx(1.0) and float(g.min()) > 0
    if h == w == 128:  # nnU-Net's sigma = tile / 8: the edge centre is about exp(-8) of the centre
        assert 1e-4 < float(g[0, 64]) < 1e-3 and float(g[0, 0]) < 1e-6


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return pixelwise.create_model("unet", num_classes=5, base_filters=4, depth=2).eval()


def smooth_image(h: int, w: int) -> torch.Tensor:
    """A normalised-looking float image with structure at several scales (not white noise)."""
    torch.manual_seed(1)
    return F.interpolate(torch.randn(1, 3, h // 10, w // 10), size=(h, w), mode="bilinear")[0]


@torch.no_grad()
def test_tiled_equals_whole_image_away_from_the_borders(unet):
    image = smooth_image(300, 400)
    whole = unet(image[None])[0]
    margin = 32  # beyond the U-Net's receptive-field radius (about 22 px at depth 2)
    for overlap, tolerance in [(0.5, 1e-4), (0.25, 1e-3)]:
        tiled = tiled_logits(unet, image, (128, 128), overlap, batch_size=3)
        assert tiled.shape == whole.shape
        inner = (tiled - whole)[:, margin:-margin, margin:-margin].abs().max()
        assert float(inner) < tolerance, (overlap, float(inner))
    # Labels are the argmax of those blended logits.
    labels = predict_tiled(unet, image, (128, 128), 0.25, batch_size=3)
    assert torch.equal(torch.from_numpy(labels).long(), tiled.argmax(0))
    # Tiles off the network's stride-4 grid: shift variance, so only nearly equal; labels still agree.
    tiled = tiled_logits(unet, image, (100, 130), 0.3)
    same = (tiled.argmax(0) == whole.argmax(0))[margin:-margin, margin:-margin].float().mean()
    assert float(same) >= 0.99


@torch.no_grad()
def test_image_smaller_than_the_tile_is_predicted_whole(unet):
    image = smooth_image(60, 90)
    assert torch.allclose(tiled_logits(unet, image, (128, 128)), unet(image[None])[0], atol=1e-6)
    # One side larger than the tile, the other smaller: the tile shrinks to the short side.
    assert tiled_logits(unet, smooth_image(60, 300), (128, 128)).shape == (5, 60, 300)


def peak_rss_growth_mb(fn) -> float:
    """Peak RSS minus the RSS before ``fn()``: Linux resets the peak when 5 is written to clear_refs."""
    def status(key: str) -> float:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(key))
        return int(line.split()[1]) / 1024

    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    fn()
    return status("VmHWM") - before


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_4000x4000_image_within_a_fixed_memory_budget():
    classes = 12
    offsets = torch.arange(classes, dtype=torch.float32).view(1, -1, 1, 1) * 0.1

    def model_fn(tiles: torch.Tensor) -> torch.Tensor:
        # A stand-in "model" cheap enough for a 16-megapixel test: class k scores colour channel k % 3,
        # so the right labels are known exactly: 9 + the brightest channel (classes 9-11 have the top offsets;
        # where channels tie, the later channel's class wins by its larger offset).
        return tiles.float().repeat(1, classes // 3, 1, 1).add_(offsets)

    image = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)
    predict_tiled(model_fn, image[:600, :600])  # warm-up, so one-off allocations are not counted
    result = {}
    start = time.perf_counter()
    growth = peak_rss_growth_mb(lambda: result.update(labels=predict_tiled(model_fn, image, (512, 512), 0.25, 4)))
    seconds = time.perf_counter() - start
    full_accumulator_mb = classes * 4000 * 4000 * 4 / 2**20  # 732 MiB, before any float copy of the image
    print(f"4000x4000, {classes} classes, 512x512 tiles: peak RSS growth {growth:.0f} MiB "
          f"(full accumulator {full_accumulator_mb:.0f} MiB), {seconds:.1f} s")
    assert growth < 400, growth
    labels = result["labels"]
    assert labels.shape == (4000, 4000) and labels.dtype == np.uint8
    assert np.array_equal(labels, 11 - image[:, :, ::-1].argmax(2))  # the last brightest channel


def test_flip_and_scale_tta_average_by_hand():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    x = torch.randn(2, 3, 20, 28)
    with torch.no_grad():
        flipped = with_tta(conv, flip=True)
        assert torch.allclose(flipped(x), (conv(x) + conv(x.flip(-1)).flip(-1)) / 2, atol=1e-6)
        # The average over a flip is flip-equivariant whatever the model.
        assert torch.allclose(flipped(x.flip(-1)), flipped(x).flip(-1), atol=1e-6)

        def by_hand(scale: float) -> torch.Tensor:
            small = F.interpolate(x, size=(round(20 * scale), round(28 * scale)), mode="bilinear")
            return F.interpolate(conv(small), size=(20, 28), mode="bilinear")

        scaled = with_tta(conv, scales=[0.5, 1.0, 1.5])(x)
        assert torch.allclose(scaled, (by_hand(0.5) + conv(x) + by_hand(1.5)) / 3, atol=1e-5)
    assert with_tta(conv) is conv


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    path = tmp_path_factory.mktemp("tiling") / "m.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("binary"), input_size=(32, 32)))
    return path


def test_cli_predict_tiled(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for name, size in [("a", (50, 70)), ("b", (40, 90))]:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    out = run_main("predict", str(checkpoint), str(folder), "--out", str(tmp_path / "pred"), "--tile", "32x48",
                   "--overlap", "0.25", "--tta-flip", "--tta-scales", "0.75,1", "--workers", "1",
                   "--precision", "fp32", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == sorted(
        f"{n}_{kind}.png" for n in "ab" for kind in ("labels", "overlay"))  # predict's default outputs
    predictor = Predictor(checkpoint, "cpu", "fp32", tile=(32, 48), overlap=0.25, tta_flip=True, tta_scales=(0.75, 1))
    for name in "ab":
        labels = np.array(Image.open(tmp_path / "pred" / f"{name}_labels.png"))
        assert labels.shape == Image.open(folder / f"{name}.png").size[::-1]
        assert np.array_equal(labels, predictor.predict(folder / f"{name}.png"))


@pytest.mark.parametrize("option,value,fragment", [("--overlap", "1", "--overlap"), ("--overlap", "-0.1", "--overlap"),
                                                   ("--tile", "0x64", "--tile"), ("--tile", "big", "--tile"),
                                                   ("--tta-scales", "0,1", "--tta-scales"),
                                                   ("--tta-scales", "a", "--tta-scales")])
def test_cli_bad_tiling_options(checkpoint, tmp_path, option, value, fragment):
    out = run_main("predict", str(checkpoint), str(tmp_path), "--out", str(tmp_path / "pred"), option, value)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert not (tmp_path / "pred").exists()
