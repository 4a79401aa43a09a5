"""Sliding-window (tiled) prediction with Gaussian blending (test-time augmentation: :mod:`pixelwise.models.tta`).

Large images (satellite, microscopy) are predicted at their native resolution, tile by tile, with
overlapping tiles blended by a Gaussian importance map as nnU-Net does: a pixel near a tile's centre,
where the network saw its full context, counts far more than one near the tile's edge, where the
network saw zero padding instead of the neighbouring pixels.

Memory is bounded by one row of tiles, not by the image: rows of tiles are processed top to bottom
and every image row that no later tile touches is finalised (argmax) and dropped from the accumulator.

>>> import numpy as np, torch
>>> tile_starts(10, 4, 3)
[0, 3, 6]
>>> model_fn = lambda tiles: torch.stack([tiles[:, 0].float(), 255 - tiles[:, 0].float()], 1)
>>> image = np.zeros((50, 70, 3), np.uint8)
>>> image[:, 35:, 0] = 255
>>> labels = predict_tiled(model_fn, image, tile=(32, 32), overlap=0.25)
>>> labels.shape, labels[:, :35].max(), labels[:, 35:].min()
((50, 70), np.uint8(1), np.uint8(0))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from pixelwise.core.errors import ConfigError
from pixelwise.models.tta import ModelFn


def check_tiling(tile: Sequence[int], overlap: float) -> tuple[int, int]:
    """``(tile_h, tile_w)`` after checking both sides are positive and ``0 <= overlap < 1``."""
    if len(tile) != 2 or min(int(t) for t in tile) < 1:
        raise ConfigError(f"tile {tile}: both sides must be at least 1 pixel; write HxW, e.g. 512x512")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap {overlap}: must be at least 0 and below 1, e.g. 0.25")
    return int(tile[0]), int(tile[1])


def gaussian_weight(tile_h: int, tile_w: int, sigma_scale: float = 1 / 8, min_weight: float = 1e-30) -> torch.Tensor:
    """``(tile_h, tile_w)`` float32 importance map: a Gaussian with sigma = side x ``sigma_scale``, max 1.

    nnU-Net's choice (sigma = 1/8 of the tile; its corners are then about 1e-7). Values are clamped to
    ``min_weight`` so that no weight underflows to 0: an image corner covered only by tile corners must
    still get a prediction. The floor is tiny on purpose: a larger one (1e-4) flattens the ratio between
    two tiles' edge weights, which measurably worsened the blend near the image borders.
    """

    def axis(n: int) -> torch.Tensor:
        centre, sigma = (n - 1) / 2, max(n * sigma_scale, 1e-6)
        x = torch.arange(n, dtype=torch.float64)
        return torch.exp(-((x - centre) ** 2) / (2 * sigma**2))

    weight = axis(tile_h)[:, None] * axis(tile_w)[None, :]
    return (weight / weight.max()).clamp_(min=min_weight).float()


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one side: every ``stride`` pixels, the last tile flush with the border.

    A side no longer than the tile gets one tile at 0 (the caller shrinks the tile to the side).
    Starts at multiples of the stride keep tiles on the network's downsampling grid when the stride
    is a multiple of it (e.g. tile 512, overlap 0.25: stride 384 = 12 x 32).
    """
    if length <= tile:
        return [0]
    return list(range(0, length - tile, max(1, stride))) + [length - tile]


def _as_chw(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A ``(C, H, W)`` view: uint8 ``(H, W, 3)`` arrays (as the Predictor reads them) are permuted, not copied."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3:
            raise ValueError(f"expected an (H, W, C) array, got shape {image.shape}")
        return torch.from_numpy(image).permute(2, 0, 1)
    if image.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(image.shape)}")
    return image


def _blended_strips(model_fn: ModelFn, image: torch.Tensor, tile: tuple[int, int], overlap: float,
                    batch_size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(first_row, weighted_logit_sums, weight_sums)`` for consecutive finished bands of image rows.

    The yielded tensors are views into a buffer that the next step overwrites: use them at once.
    A batch of tiles never spans two rows of tiles, so the buffer is one tile high.
    """
    height, width = image.shape[-2:]
    th, tw = min(tile[0], height), min(tile[1], width)  # a side smaller than the tile is predicted whole
    ys = tile_starts(height, th, round(th * (1 - overlap)))
    xs = tile_starts(width, tw, round(tw * (1 - overlap)))
    weight = gaussian_weight(th, tw)
    acc = weights = None  # rows [top, top + th) of the image; allocated once the class count is known
    top = 0
    for row, y in enumerate(ys):
        for first in range(0, len(xs), batch_size):
            batch_xs = xs[first:first + batch_size]
            tiles = torch.stack([image[:, y:y + th, x:x + tw] for x in batch_xs])
            logits = model_fn(tiles)
            if acc is None:
                acc = torch.zeros((logits.shape[1], th, width), dtype=torch.float32, device=logits.device)
                weights = torch.zeros((th, width), dtype=torch.float32, device=logits.device)
                weight = weight.to(logits.device)
            for k, x in enumerate(batch_xs):
                # In place (addcmul_), so no temporary the size of a tile's logits per tile.
                acc[:, y - top:y - top + th, x:x + tw].addcmul_(logits[k].float(), weight)
                weights[y - top:y - top + th, x:x + tw] += weight
            del logits, tiles
        # Rows above the next tile row are final: no later tile reaches them.
        done = (ys[row + 1] if row + 1 < len(ys) else height) - top
        yield top, acc[:, :done], weights[:done]
        keep = th - done
        if keep > 0:
            # Move the unfinished rows to the top of the buffer, one class at a time so the temporary
            # copy is one class's band, not the whole buffer (source and target overlap, hence the copy).
            for c in range(acc.shape[0]):
                acc[c, :keep] = acc[c, done:done + keep].clone()
            weights[:keep] = weights[done:done + keep].clone()
        acc[:, keep:] = 0
        weights[keep:] = 0
        top += done


def predict_tiled(model_fn: ModelFn, image: np.ndarray | torch.Tensor, tile: tuple[int, int] = (512, 512),
                  overlap: float = 0.25, batch_size: int = 4) -> np.ndarray:
    """``(H, W)`` class ids for ``image`` by sliding-window prediction with Gaussian-blended logits.

    ``image`` is a ``(C, H, W)`` tensor of what ``model_fn`` takes (a normalised float image, or uint8
    when ``model_fn`` normalises each batch of tiles itself) or an ``(H, W, C)`` array, e.g. uint8 RGB.
    Tiles of ``tile`` = (h, w) overlap by ``overlap`` of their size and go through ``model_fn`` in
    batches of ``batch_size``; no tile is resized, so the image is predicted at its own resolution.

    The logits are blended, not softmax probabilities as in nnU-Net v1: the argmax of averaged logits is
    what whole-image prediction gives, it needs no softmax per tile, and nnU-Net v2 blends logits too.

    Peak memory: classes x tile_h x W float32 (the band of logits being blended) + tile_h x W float32
    (weight sums) + H x W labels (1 byte each up to 256 classes) + one batch of tiles and the model's
    activations for it. For 4000x4000, 12 classes and 512x512 tiles that is 98 + 8 + 16 MB, where a
    whole-image accumulator would need 768 MB (plus 192 MB for a float copy of the image).
    """
    tile = check_tiling(tile, overlap)
    chw = _as_chw(image)
    labels = None
    for top, sums, _ in _blended_strips(model_fn, chw, tile, overlap, max(1, batch_size)):
        if labels is None:
            dtype = np.uint8 if sums.shape[0] <= 256 else np.int32
            labels = np.empty(chw.shape[-2:], dtype)
        # Every pixel's weight sum is positive, so the argmax of the sums is that of the averages.
        # max(0).indices: the same first-maximum index as argmax(0), about 5x faster on CPU for this layout.
        labels[top:top + sums.shape[1]] = sums.max(0).indices.cpu().numpy()
    return labels


def tiled_logits(model_fn: ModelFn, image: np.ndarray | torch.Tensor, tile: tuple[int, int] = (512, 512),
                 overlap: float = 0.25, batch_size: int = 4) -> torch.Tensor:
    """``(classes, H, W)`` blended float32 logits, as :func:`predict_tiled` computes them.

    Holds every logit at once (classes x H x W float32): for images that fit, tests and soft outputs.
    """
    tile = check_tiling(tile, overlap)
    bands = [(sums / weights).cpu() for _, sums, weights in
             _blended_strips(model_fn, _as_chw(image), tile, overlap, max(1, batch_size))]
    return torch.cat(bands, 1)



def predict_tiled_probs(model_fn: ModelFn, image: np.ndarray | torch.Tensor, tile: tuple[int, int] = (512, 512),
                        overlap: float = 0.25, batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, probs)``: the class ids :func:`predict_tiled` gives and the ``(classes, H, W)`` float32 softmax
    of the blended logits (which holds every class's probability at once, as :func:`tiled_logits` does)."""
    tile = check_tiling(tile, overlap)
    labels, bands = [], []
    for _, sums, weights in _blended_strips(model_fn, _as_chw(image), tile, overlap, max(1, batch_size)):
        # The labels come from the weighted sums exactly as in predict_tiled, so they are the same ids.
        labels.append(sums.max(0).indices.to(torch.uint8 if sums.shape[0] <= 256 else torch.int32).cpu())
        bands.append(torch.softmax(sums / weights, 0).cpu())
    return torch.cat(labels, 0).numpy(), torch.cat(bands, 1).numpy()
