"""``--format composite`` on JPEG composites of known masks: at least as exact as plain nearest colour.

JPEG (4:2:0) keeps chroma at half resolution, so thin structures and every class boundary of a colour
mask come back smeared; the reader must not lose more of them than the plain nearest-palette loop of
the tutorials. benchmarks/check_composite.py measures the same on real CamVid labels.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from pixelwise.data.formats import open_dataset
from pixelwise.data.presets import get_preset


def thin_structures_mask(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """CamVid class ids: large regions, then poles 1-3 pixels wide, thin slanted lines and small signs."""
    sky, building, pole, road, pavement, tree, sign, fence, car, pedestrian, bicyclist = range(11)
    ids = np.full((size, size), road, np.uint8)
    ids[: size // 3] = sky
    for x in range(0, size, 24):
        ids[int(rng.integers(5, size // 3)) : size // 2, x : x + int(rng.integers(8, 20))] = building
    ids[size // 2 : size // 2 + 12] = pavement
    ids[size // 3 : size // 2, int(rng.integers(0, size // 2)) :][:, :30] = tree
    for _ in range(2):
        y, x = int(rng.integers(size // 2 + 16, size - 20)), int(rng.integers(0, size - 30))
        ids[y : y + 16, x : x + 28] = car
    for _ in range(6):  # poles: the thin structures JPEG smears most
        x, width = int(rng.integers(0, size - 3)), int(rng.integers(1, 4))
        ids[int(rng.integers(0, size // 3)) : int(rng.integers(size // 2, size)), x : x + width] = pole
    for cls in (fence, pedestrian, bicyclist):  # slanted lines 1-2 pixels thick
        start = tuple(int(v) for v in rng.integers(0, size, 2))
        end = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(ids, start, end, int(cls), thickness=int(rng.integers(1, 3)))
    for _ in range(3):
        y, x = int(rng.integers(0, size - 6)), int(rng.integers(0, size - 6))
        ids[y : y + 5, x : x + 5] = sign
    return ids


def nearest_colour(mask_rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The plain loop: the palette colour at the smallest RGB distance, no tolerance, no other rule."""
    d2 = np.stack([((mask_rgb.astype(np.int64) - c.astype(np.int64)) ** 2).sum(-1) for c in palette])
    return d2.argmin(0)


def test_composite_reader_is_at_least_as_exact_as_nearest_colour(tmp_path):
    rng = np.random.default_rng(16)
    palette = get_preset("camvid").palette
    truths = {}
    (tmp_path / "train").mkdir()
    for i in range(6):
        ids = thin_structures_mask(rng)
        photo = rng.integers(0, 256, ids.shape + (3,), dtype=np.uint8)
        buffer = io.BytesIO()  # quality 90, 4:2:0 chroma subsampling: how such composites are saved
        Image.fromarray(np.concatenate([photo, palette[ids]], axis=1)).save(buffer, "JPEG", quality=90, subsampling=2)
        (tmp_path / "train" / f"{i}.jpg").write_bytes(buffer.getvalue())
        truths[str(i)] = ids
    index = open_dataset(tmp_path, "composite", "camvid")
    plain = ours = 0
    for sample in index.split("train"):
        truth = truths[sample.image.stem]
        mask_rgb = np.asarray(Image.open(sample.image).convert("RGB"))[:, truth.shape[1] :]
        plain += int(np.count_nonzero(nearest_colour(mask_rgb, palette) == truth))
        ours += int(np.count_nonzero(index.reader.load(sample)[1] == truth))
    total = sum(t.size for t in truths.values())
    assert ours >= plain, f"composite reader {ours / total:.2%} < plain nearest colour {plain / total:.2%}"
    # and the poles, a class made only of boundary pixels, are kept as well
    pole_truth = sum(int(np.count_nonzero(t == 2)) for t in truths.values())
    pole_right = sum(int(np.count_nonzero((index.reader.load(s)[1] == 2) & (truths[s.image.stem] == 2)))
                     for s in index.split("train"))
    assert pole_right >= 0.9 * pole_truth
