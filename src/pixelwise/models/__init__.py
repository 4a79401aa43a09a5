"""Segmentation models: a registry of architectures, each an ``nn.Module`` returning logits."""

from pixelwise.models import attention_unet, deeplab, segnet, sepres_unet, unet  # noqa: F401  (registers the models)
from pixelwise.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
