"""Tests for image/mask reading, class-id mapping, SegmentationDataset, collation and pre-flight scans."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.core.errors import DataError
from pixelwise.data.checks import scan_samples
from pixelwise.data.classes import ClassSpec
from pixelwise.data.dataset import SegmentationDataset, collate_padded, load_pair, to_class_ids
from pixelwise.data.io import image_size, read_image, read_mask, write_png
from pixelwise.data.presets import get_preset
from pixelwise.data.sample import Sample
from pixelwise.data.transforms import AugmentOptions, eval_transform, train_transform

SPEC3 = ClassSpec.from_lists(["a", "b", "c"], ignore_index=9)


def noise_image(path: Path, h: int, w: int, seed: int = 0) -> Path:
    write_png(path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def index_mask(path: Path, values: np.ndarray) -> Path:
    write_png(path, values.astype(np.uint8))
    return path


def sample(tmp_path: Path, name: str, mask_values: np.ndarray, image_hw: tuple[int, int] | None = None,
           seed: int = 0) -> Sample:
    h, w = image_hw or mask_values.shape
    return Sample(noise_image(tmp_path / f"{name}.png", h, w, seed),
                  index_mask(tmp_path / f"{name}_mask.png", mask_values))


# --- io -------------------------------------------------------------------------------------------


def test_read_image_returns_rgb(tmp_path):
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[1, 2] = (1, 2, 3)
    write_png(tmp_path / "x.png", rgb)
    out = read_image(tmp_path / "x.png")
    assert out.dtype == np.uint8 and out.shape == (3, 5, 3)
    np.testing.assert_array_equal(out, rgb)


def test_read_image_converts_grey_to_rgb(tmp_path):
    Image.fromarray(np.full((2, 3), 77, np.uint8), mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (2, 3, 3)
    assert (out == 77).all()


def test_read_image_corrupt_file_names_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"this is definitely not a png file" * 10)
    with pytest.raises(DataError, match=re.escape(str(path)) + r": cannot decode this image"):
        read_image(path)


def test_read_image_empty_file_names_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": cannot decode this image"):
        read_image(path)


def test_read_image_missing_file_names_file(tmp_path):
    path = tmp_path / "gone.png"
    with pytest.raises(DataError, match=re.escape(str(path)) + r": image file not found"):
        read_image(path)


def test_read_mask_keeps_palette_indices(tmp_path):
    values = np.array([[0, 1, 2], [3, 1, 0]], np.uint8)
    im = Image.fromarray(values, mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    im.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    out = read_mask(tmp_path / "p.png")
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, values)


def test_read_mask_colour_image_is_data_error(tmp_path):
    path = tmp_path / "colour.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8), mode="RGB").save(path)
    with pytest.raises(DataError, match=re.escape(str(path)) + r": mask is a colour image"):
        read_mask(path)


def test_read_mask_corrupt_file_names_file(tmp_path):
    path = tmp_path / "m.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=re.escape(str(path)) + r": cannot decode this mask"):
        read_mask(path)


def test_image_size_reads_header(tmp_path):
    noise_image(tmp_path / "i.png", 7, 11)
    assert image_size(tmp_path / "i.png") == (7, 11)


# --- class ids ------------------------------------------------------------------------------------


def test_to_class_ids_maps_ignore_index_to_255():
    mask = np.array([[0, 1, 2], [9, 9, 0]], np.uint8)
    out = to_class_ids(mask, SPEC3, "m.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1, 2], [255, 255, 0]])


def test_to_class_ids_camvid_void():
    out = to_class_ids(np.array([[3, 11, 10]], np.uint8), get_preset("camvid"), "m.png")
    assert out.tolist() == [[3, 255, 10]]


def test_to_class_ids_accepts_16_bit_masks():
    out = to_class_ids(np.array([[2, 9]], np.uint16), SPEC3, "m.png")
    assert out.tolist() == [[2, 255]]


def test_to_class_ids_unknown_value_names_file_and_value():
    mask = np.array([[0, 1, 5], [5, 2, 0]], np.uint8)
    with pytest.raises(DataError, match=r"^dir/m\.png: mask value 5 \(2 pixels\) is neither a class 0\.\.2 "
                                        r"or the ignore index 9"):
        to_class_ids(mask, SPEC3, "dir/m.png")


def test_to_class_ids_lists_several_unknown_values():
    with pytest.raises(DataError, match=r"m\.png: mask value 4 \(3 pixels, values \[4, 7\]\)"):
        to_class_ids(np.array([[4, 7, 4]], np.uint8), SPEC3, "m.png")


def test_to_class_ids_without_ignore_index_rejects_255():
    spec = ClassSpec.from_lists(["a", "b"])
    with pytest.raises(DataError, match=r"m\.png: mask value 255 .* is neither a class 0\.\.1;"):
        to_class_ids(np.array([[0, 255]], np.uint8), spec, "m.png")


# --- SegmentationDataset ------------------------------------------------------------------------


def test_dataset_ignore_pixels_become_minus_one(tmp_path):
    values = np.array([[0, 1, 2, 9], [9, 2, 1, 0]], np.uint8)
    s = sample(tmp_path, "a", values)
    ds = SegmentationDataset([s], SPEC3, eval_transform(None), augment=False)
    item = ds[0]
    assert item["index"] == 0
    assert item["mask"].dtype == torch.int64
    assert item["mask"].tolist() == [[0, 1, 2, -1], [-1, 2, 1, 0]]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 2, 4)
    np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), read_image(s.image))


def test_dataset_mask_size_mismatch_names_mask(tmp_path):
    s = sample(tmp_path, "a", np.zeros((4, 5), np.uint8), image_hw=(4, 6))
    ds = SegmentationDataset([s], SPEC3, eval_transform(None), augment=False)
    with pytest.raises(DataError, match=re.escape(str(s.mask)) + r": mask is 5x4 but its image is 6x4"):
        ds[0]


def test_dataset_unknown_mask_value_names_mask(tmp_path):
    s = sample(tmp_path, "a", np.array([[0, 3]], np.uint8))
    ds = SegmentationDataset([s], SPEC3, eval_transform(None), augment=False)
    with pytest.raises(DataError, match=re.escape(str(s.mask)) + r": mask value 3"):
        ds[0]


def test_load_pair_without_mask_is_data_error(tmp_path):
    path = noise_image(tmp_path / "i.png", 2, 2)
    with pytest.raises(DataError, match=re.escape(str(path)) + ": has no mask"):
        load_pair(Sample(path, None), SPEC3)


def augmented_dataset(tmp_path: Path, seed: int = 3) -> SegmentationDataset:
    rng = np.random.default_rng(1)
    samples = [sample(tmp_path, f"s{i}", rng.integers(0, 3, (20, 24)), seed=i) for i in range(3)]
    return SegmentationDataset(samples, SPEC3, train_transform((16, 16), AugmentOptions()), seed=seed)


def same_item(a: dict, b: dict) -> bool:
    return torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])


def test_augmentation_is_deterministic_per_seed_epoch_index(tmp_path):
    ds = augmented_dataset(tmp_path)
    ds.set_epoch(2)
    first = ds[1]
    assert first["image"].shape == (3, 16, 16) and first["mask"].shape == (16, 16)
    _ = (ds[0], ds[2])  # other items in between must not change what index 1 gets
    assert same_item(ds[1], first)
    other = augmented_dataset(tmp_path)  # a fresh dataset (as in a new worker or a resumed run)
    other.set_epoch(2)
    assert same_item(other[1], first)


def test_augmentation_differs_between_epochs_and_seeds(tmp_path):
    ds = augmented_dataset(tmp_path)
    ds.set_epoch(0)
    epoch0 = ds[1]
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], epoch0["image"])
    other_seed = augmented_dataset(tmp_path, seed=4)
    assert not torch.equal(other_seed[1]["image"], epoch0["image"])


def test_augmented_mask_values_stay_valid(tmp_path):
    ds = augmented_dataset(tmp_path)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            values = set(ds[i]["mask"].unique().tolist())
            assert values <= {-1, 0, 1, 2}


def test_eval_mode_resizes_image_and_keeps_full_mask(tmp_path):
    values = np.random.default_rng(0).integers(0, 3, (20, 24)).astype(np.uint8)
    values[0, 0] = 9
    s = sample(tmp_path, "a", values)
    ds = SegmentationDataset([s], SPEC3, eval_transform((16, 16)), augment=False)
    item = ds[0]
    assert item["image"].shape == (3, 16, 16)
    assert item["mask"].shape == (20, 24)
    expected = values.astype(np.int64)
    expected[expected == 9] = -1
    np.testing.assert_array_equal(item["mask"].numpy(), expected)
    again = ds[0]
    assert same_item(item, again)


# --- collate --------------------------------------------------------------------------------------


def test_collate_padded_pads_and_reports_sizes():
    a = {"image": torch.full((3, 2, 3), 7, dtype=torch.uint8), "mask": torch.ones((2, 3), dtype=torch.int64),
         "index": 4}
    b = {"image": torch.full((3, 4, 2), 9, dtype=torch.uint8),
         "mask": torch.full((5, 1), 2, dtype=torch.int64), "index": 1}
    out = collate_padded([a, b])
    assert out["image"].shape == (2, 3, 4, 3) and out["image"].dtype == torch.uint8
    assert out["mask"].shape == (2, 5, 3) and out["mask"].dtype == torch.int64
    assert out["image"][0, :, :2, :3].eq(7).all() and out["image"][0, :, 2:, :].eq(0).all()
    assert out["image"][1, :, :, :2].eq(9).all() and out["image"][1, :, :, 2:].eq(0).all()
    assert out["mask"][0].tolist() == [[1, 1, 1], [1, 1, 1], [-1, -1, -1], [-1, -1, -1], [-1, -1, -1]]
    assert out["mask"][1].tolist() == [[2, -1, -1]] * 5
    assert out["image_size"].tolist() == [[2, 3], [4, 2]]
    assert out["mask_size"].tolist() == [[2, 3], [5, 1]]
    assert out["index"].tolist() == [4, 1]


def test_collate_same_size_is_plain_stack():
    items = [{"image": torch.full((3, 2, 2), i, dtype=torch.uint8), "mask": torch.full((2, 2), i), "index": i}
             for i in range(3)]
    out = collate_padded(items)
    assert torch.equal(out["image"], torch.stack([x["image"] for x in items]))
    assert torch.equal(out["mask"], torch.stack([x["mask"] for x in items]))


# --- checks ---------------------------------------------------------------------------------------


def test_scan_samples_counts_pixels_per_class_ignored_last(tmp_path):
    s1 = sample(tmp_path, "a", np.array([[0, 0, 1], [9, 2, 2]], np.uint8))
    s2 = sample(tmp_path, "b", np.array([[2, 2], [2, 9], [0, 9]], np.uint8))
    counts = scan_samples([s1, s2], SPEC3, workers=2)
    assert counts.dtype == np.int64
    assert counts.tolist() == [3, 1, 5, 3]


def test_scan_samples_unlabelled_sample_counts_nothing(tmp_path):
    img = noise_image(tmp_path / "i.png", 3, 3)
    assert scan_samples([Sample(img, None)], SPEC3).tolist() == [0, 0, 0, 0]


def test_scan_samples_size_mismatch_names_mask(tmp_path):
    good = sample(tmp_path, "a", np.zeros((3, 3), np.uint8))
    bad = sample(tmp_path, "b", np.zeros((3, 4), np.uint8), image_hw=(5, 4))
    with pytest.raises(DataError, match=re.escape(str(bad.mask)) + r": mask is 4x3 but its image is 4x5"):
        scan_samples([good, bad], SPEC3)


def test_scan_samples_unknown_value_names_mask(tmp_path):
    bad = sample(tmp_path, "b", np.array([[0, 6]], np.uint8))
    with pytest.raises(DataError, match=re.escape(str(bad.mask)) + r": mask value 6"):
        scan_samples([bad], SPEC3)


def test_one_bit_png_mask_reads_as_integer_ids(tmp_path):
    values = np.array([[0, 1, 1], [1, 0, 0]], bool)
    Image.fromarray(values).convert("1").save(tmp_path / "b.png")
    out = read_mask(tmp_path / "b.png")
    assert out.dtype.kind in "ui"
    np.testing.assert_array_equal(out, values.astype(np.uint8))
    assert to_class_ids(out, get_preset("binary"), "b.png").tolist() == [[0, 1, 1], [1, 0, 0]]


def test_exif_rotated_jpeg_is_read_as_stored(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "e.jpg", exif=exif)
    s = Sample(tmp_path / "e.jpg", index_mask(tmp_path / "e_mask.png", np.zeros((4, 6), np.uint8)))
    assert image_size(s.image) == (4, 6)
    assert scan_samples([s], SPEC3).tolist() == [24, 0, 0, 0]
    assert read_image(s.image).shape == (4, 6, 3)
    assert SegmentationDataset([s], SPEC3, eval_transform(None), augment=False)[0]["mask"].shape == (4, 6)


def test_rare_class_crops_show_the_rare_class_far_more_often():
    """A 1-pixel-wide 'pole' in a 200x200 image: plain 32x32 crops show it ~1 time in 6; with
    rare_class_crops 0.5, at least half of the crops do (the other half as before)."""
    from pixelwise.data.transforms import rare_classes

    image = np.zeros((200, 200, 3), np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[:, 100] = 1
    assert rare_classes([(mask == c).mean() for c in (0, 1)]) == [1]

    def share_showing_pole(rare_share: float) -> float:
        options = AugmentOptions(scale=(1.0, 1.0), hflip=False, color_jitter=0, noise=0, rare_class_crops=rare_share)
        t = train_transform(None, options, crop=(32, 32), rare_classes=[1])
        hits = 0
        for seed in range(200):
            t.set_random_seed(seed)
            hits += int((t(image=image, mask=mask)["mask"] == 1).any())
        return hits / 200

    plain, balanced = share_showing_pole(0.0), share_showing_pole(0.5)
    assert plain < 0.3 and balanced > 0.5
