"""pixelwise: semantic segmentation from one command.

>>> import pixelwise
>>> model = pixelwise.create_model("unet", num_classes=3, base_filters=8)
>>> "unet" in pixelwise.list_models()
True
"""

from __future__ import annotations

__version__ = "0.1.0"

from pixelwise.errors import PixelwiseError  # noqa: E402
from pixelwise.models import create_model, list_models  # noqa: E402
from pixelwise.training.checkpoint import load_checkpoint, load_model  # noqa: E402

__all__ = [
    "PixelwiseError",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "load_model",
]
