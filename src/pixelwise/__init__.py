"""pixelwise: semantic segmentation from one command.

The Python API mirrors the CLI::

    import pixelwise
    result = pixelwise.train(pixelwise.TrainConfig(data="data/camvid", epochs=40, out="runs/camvid"))
    metrics = pixelwise.evaluate(result.best_checkpoint, "data/camvid", split="val")
    labels = pixelwise.Predictor(result.best_checkpoint).predict("street.png")   # (H, W) class ids

>>> import pixelwise
>>> model = pixelwise.create_model("unet", num_classes=3, base_filters=8)
>>> "unet" in pixelwise.list_models()
True
"""

from __future__ import annotations

from pixelwise.core.errors import PixelwiseError
from pixelwise.core.version import __version__
from pixelwise.inference.predictor import Predictor, predict_to_folder
from pixelwise.models import create_model, list_models
from pixelwise.models.checkpoint import load_checkpoint, load_model
from pixelwise.training.config import TrainConfig, load_config
from pixelwise.training.evaluate import evaluate_checkpoint as evaluate
from pixelwise.training.trainer import train

__all__ = [
    "PixelwiseError",
    "Predictor",
    "TrainConfig",
    "__version__",
    "create_model",
    "evaluate",
    "list_models",
    "load_checkpoint",
    "load_config",
    "load_model",
    "predict_to_folder",
    "train",
]
