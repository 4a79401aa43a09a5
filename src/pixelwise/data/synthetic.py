"""Built-in data: seeded, road-scene-like images with exact label maps.

Colour alone does not decide a class here: every class draws its colour from ranges that overlap
other classes (grey sky vs grey road vs grey buildings, green cars vs trees), so a model must use
texture (window grids, paving joints, leaf blotches, asphalt grain), shape (cars with wheels) and
context (sky above the horizon, road below it, pavement beside the road) to label pixels.

>>> image, mask = make_scene(np.random.default_rng(0), 96, 128)
>>> image.shape, mask.shape, int(mask.max()) < CLASSES.num_classes
((96, 128, 3), (96, 128), True)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import write_png

CLASSES = ClassSpec.from_lists(
    ["sky", "building", "road", "pavement", "tree", "car"],
    [(70, 130, 180), (70, 70, 70), (128, 64, 128), (244, 35, 232), (107, 142, 35), (0, 0, 142)],
)
SKY, BUILDING, ROAD, PAVEMENT, TREE, CAR = range(6)


def _grey(rng: np.random.Generator, low: int = 90, high: int = 170) -> np.ndarray:
    """A greyish colour with a small random tint: shared by sky, buildings, road and cars."""
    return np.clip(rng.integers(low, high) + rng.integers(-18, 19, size=3), 0, 255)


def _fill(image: np.ndarray, mask: np.ndarray, region: np.ndarray, texture: np.ndarray, label: int) -> None:
    image[region] = texture[region]
    mask[region] = label


def _flat(h: int, w: int, color: np.ndarray) -> np.ndarray:
    return np.broadcast_to(color.astype(np.float32), (h, w, 3)).copy()


def _sky(rng, h, w):
    top = _grey(rng, 110, 200) if rng.random() < 0.5 else np.array([90, 140, 215]) + rng.integers(-25, 26, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None] * rng.uniform(20, 50)
    return _flat(h, w, top) + ramp  # smooth, brighter towards the horizon


def _building(rng, h, w):
    tex = _flat(h, w, _grey(rng, 70, 180) if rng.random() < 0.7 else rng.integers(60, 200, 3))
    step_y, step_x = rng.integers(7, 12), rng.integers(7, 12)
    yy, xx = np.mgrid[0:h, 0:w]
    windows = ((yy % step_y) < step_y // 2) & ((xx % step_x) < step_x // 2)
    tex[windows] *= rng.uniform(0.45, 0.7)  # dark window grid: the building's texture
    return tex


def _road(rng, h, w):
    return _flat(h, w, _grey(rng, 80, 160)) + rng.normal(0, 14, (h, w, 1)).astype(np.float32)  # asphalt grain


def _pavement(rng, h, w):
    tex = _flat(h, w, _grey(rng, 100, 190) if rng.random() < 0.6 else rng.integers(120, 220, 3))
    tile = rng.integers(5, 9)
    yy, xx = np.mgrid[0:h, 0:w]
    tex[((yy % tile) == 0) | ((xx % tile) == 0)] *= 0.6  # paving joints
    return tex


def _tree(rng, h, w):
    base = np.array([60, 120, 40]) + rng.integers(-30, 31, 3)
    blotch = cv2.resize(rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32), (w, h))
    return _flat(h, w, base) * (1 + 0.35 * blotch[..., None])  # leafy blotches


def _add_buildings(rng, image, mask, yy, xx, horizon: int) -> None:
    """Buildings stand on the horizon: a row of blocks of random width and height."""
    h, w = mask.shape
    x = int(rng.integers(-10, 10))
    while x < w:
        bw, top = int(rng.integers(w // 8, w // 3)), int(horizon - rng.uniform(0.2, 0.95) * horizon)
        if rng.random() < 0.8:
            _fill(image, mask, (yy >= top) & (yy < horizon) & (xx >= x) & (xx < x + bw), _building(rng, h, w),
                  BUILDING)
        x += bw + int(rng.integers(0, w // 10))


def _add_ground(rng, image, mask, yy, xx, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Road as a perspective trapezoid to a vanishing point, pavement on both sides; returns the road's
    centre and half width per pixel (the cars stand on it)."""
    h, w = mask.shape
    vanish_x = w * rng.uniform(0.3, 0.7)
    half_bottom = w * rng.uniform(0.3, 0.55)
    t = np.clip((yy - horizon) / max(h - horizon, 1), 0, 1)
    centre = vanish_x + (w / 2 - vanish_x) * t
    road_half = 2 + half_bottom * t
    ground = yy >= horizon
    _fill(image, mask, ground, _pavement(rng, h, w), PAVEMENT)
    _fill(image, mask, ground & (np.abs(xx - centre) < road_half), _road(rng, h, w), ROAD)
    return centre, road_half


def _add_trees(rng, image, mask, yy, xx, horizon: int) -> None:
    """Leafy discs on trunks, in front of buildings near the horizon."""
    h, w = mask.shape
    for _ in range(int(rng.integers(0, 4))):
        cx, r = int(rng.integers(0, w)), int(rng.integers(h // 12, h // 6))
        cy = int(horizon - r - rng.integers(0, h // 10))
        trunk = (np.abs(xx - cx) < max(r // 5, 1)) & (yy >= cy) & (yy < horizon + 2)
        crown = (xx - cx) ** 2 + ((yy - cy) * 1.2) ** 2 < r * r
        tex = _tree(rng, h, w)
        tex[trunk & ~crown] = np.array([80, 60, 40], np.float32)
        _fill(image, mask, crown | trunk, tex, TREE)


def _add_cars(rng, image, mask, yy, xx, horizon: int, centre: np.ndarray, road_half: np.ndarray) -> None:
    """Cars on the road, bigger when nearer: a body, dark windows and two wheels."""
    h, w = mask.shape
    for _ in range(int(rng.integers(0, 4))):
        cy_bottom = int(rng.integers(horizon + (h - horizon) // 4, h + 4))
        scale = (cy_bottom - horizon) / max(h - horizon, 1)
        cw, ch = int(w * 0.28 * scale) + 8, int(h * 0.16 * scale) + 5
        row = min(cy_bottom, h - 1)
        cx = int(centre[row, 0] + rng.uniform(-0.7, 0.7) * road_half[row, 0])
        colour = _grey(rng, 40, 220) if rng.random() < 0.5 else rng.integers(0, 256, 3)
        body = (np.abs(xx - cx) < cw // 2) & (yy < cy_bottom - ch // 5) & (yy >= cy_bottom - ch)
        cabin = (np.abs(xx - cx) < cw // 3) & (yy >= cy_bottom - ch - ch // 2) & (yy < cy_bottom - ch)
        wheels = np.zeros_like(body)
        for side in (-1, 1):
            wx, wr = cx + side * cw // 3, max(ch // 4, 2)
            wheels |= (xx - wx) ** 2 + (yy - (cy_bottom - ch // 5)) ** 2 < wr * wr
        tex = _flat(h, w, colour)
        tex[cabin] = tex[cabin] * 0.35 + 20  # tinted glass
        tex[wheels] = 25
        _fill(image, mask, body | cabin | wheels, tex, CAR)


def make_scene(rng: np.random.Generator, height: int = 128, width: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: ``(H, W, 3)`` uint8 RGB image and its ``(H, W)`` uint8 label map.

    Layers are painted back to front, each drawing from ``rng`` in a fixed order, so a seed gives one scene.
    """
    h, w = height, width
    image = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    horizon = int(h * rng.uniform(0.35, 0.55))
    _fill(image, mask, yy < horizon, _sky(rng, h, w), SKY)
    _add_buildings(rng, image, mask, yy, xx, horizon)
    centre, road_half = _add_ground(rng, image, mask, yy, xx, horizon)
    _add_trees(rng, image, mask, yy, xx, horizon)
    _add_cars(rng, image, mask, yy, xx, horizon, centre, road_half)
    # Whole-image lighting and sensor noise: colours shift from image to image.
    image = image * rng.uniform(0.75, 1.25) + rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(root: str | Path, n_train: int = 320, n_val: int = 64, height: int = 128, width: int = 160,
                  seed: int = 0) -> Path:
    """Write the built-in dataset in the ``folders`` format (``images/<split>``, ``masks/<split>``).

    The same seed always writes the same files; an existing complete dataset is reused.
    """
    root = Path(root)
    marker = root / f".complete-{n_train}-{n_val}-{height}x{width}-{seed}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for kind in ("images", "masks"):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
            for old in (root / kind / split).glob(f"{split}_*.png"):  # from a run with other settings
                old.unlink()
        for i in range(n):
            image, mask = make_scene(rng, height, width)
            write_png(root / "images" / split / f"{split}_{i:04d}.png", image)
            write_png(root / "masks" / split / f"{split}_{i:04d}.png", mask)
    CLASSES.to_yaml(root / "classes.yaml")
    for old in root.glob(".complete-*"):
        old.unlink()
    marker.touch()
    return root
