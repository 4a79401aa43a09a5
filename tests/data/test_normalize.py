"""``normalize`` works in place on its own float copy (fast), so it must give the formula's values and never
touch the caller's tensor, whatever its dtype."""

from __future__ import annotations

import torch

from pixelwise.core.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelwise.data.transforms import normalize


def test_normalize_gives_the_formula_and_leaves_its_input_alone():
    images = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (images.float() / 255 - mean) / std
    for given in (images, images.float()):  # a float input's .float() is itself: in place would overwrite it
        before = given.clone()
        result = normalize(given, IMAGENET_MEAN, IMAGENET_STD)
        assert result.dtype == torch.float32
        torch.testing.assert_close(result, expected, rtol=0, atol=1e-5)
        assert torch.equal(given, before)
