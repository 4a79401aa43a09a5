"""Per-pixel uncertainty from class probabilities: how unsure a model is, pixel by pixel, on a 0..1 scale.

Two measures, both 0 where the model puts all its probability on one class:

* ``entropy``: the entropy of the class probabilities over log(C), the entropy of a uniform guess, so that
  models of any class count share one scale (1 = all classes equally likely);
* ``margin``: 1 - the probability of the predicted class (at most 1 - 1/C).

>>> import torch
>>> probs = torch.tensor([[[0.25, 1.0]], [[0.25, 0.0]], [[0.25, 0.0]], [[0.25, 0.0]]])   # (C=4, H=1, W=2)
>>> uncertainty_map(probs, "entropy").tolist(), uncertainty_map(probs, "margin").tolist()
([[1.0, 0.0]], [[0.75, 0.0]])
>>> uncertainty_png_values(torch.tensor([[0.0, 0.5, 1.0]]))
array([[  0, 128, 255]], dtype=uint8)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pixelwise.core.errors import ConfigError

UNCERTAINTY_KINDS = ("entropy", "margin")


def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` entropy of ``(C, H, W)`` probabilities over log(C), in 0..1."""
    # entr(p) = -p log(p), and 0 for p = 0, where p * log(p) would be NaN for a class of probability exactly 0.
    entropy = torch.special.entr(probs).sum(0)
    return (entropy / math.log(max(probs.shape[0], 2))).clamp_(0.0, 1.0)


def uncertainty_map(probs: torch.Tensor, kind: str = "entropy") -> torch.Tensor:
    """``(H, W)`` float32 uncertainty in 0..1 of ``(C, H, W)`` class probabilities; ``kind``: entropy or margin."""
    probs = probs.float()
    if kind == "entropy":
        return normalized_entropy(probs)
    if kind == "margin":
        return (1.0 - probs.max(0).values).clamp_(0.0, 1.0)
    raise ConfigError(f"uncertainty '{kind}' is unknown; choose {' or '.join(UNCERTAINTY_KINDS)}")


def uncertainty_png_values(values: torch.Tensor) -> np.ndarray:
    """0..1 uncertainty as the uint8 grey levels of an uncertainty PNG (0 = certain, 255 = most uncertain)."""
    return torch.round(values.float().clamp(0.0, 1.0) * 255).to(torch.uint8).cpu().numpy()
