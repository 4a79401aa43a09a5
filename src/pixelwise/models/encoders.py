"""Pretrained-capable encoders from timm, with offline-first weight loading.

``encoder_weights`` is ``None`` (random init; never touches the network), a local file
(``.safetensors`` or ``.pth``, loaded with ``weights_only=True``), or ``"imagenet"`` (local caches and
pip-packaged weights first, the network only when online; see :mod:`pixelwise.models.pretrained`).

>>> enc = TimmEncoder("resnet18", in_channels=3, weights=None)
>>> enc.channels, enc.reductions
([64, 64, 128, 256, 512], [2, 4, 8, 16, 32])
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.models.pretrained import imagenet_state_dict, read_state_dict


class TimmEncoder(nn.Module):
    """A timm ``features_only`` backbone returning features from shallow to deep."""

    def __init__(self, name: str, in_channels: int = 3, weights: str | None = None, depth: int | None = 5,
                 output_stride: int | None = None) -> None:
        """``depth``: how many feature levels (None: all the model has); ``output_stride``: dilate the last
        stages so the deepest feature has this stride (DeepLab), None for the model's own."""
        super().__init__()
        import timm  # here: timm's import (torchvision, torch._dynamo) is most of `predict`'s start-up otherwise

        if name not in timm.list_models():
            raise ConfigError(f"unknown encoder '{name}'; see timm.list_models() for the names")
        options: dict = {"out_indices": tuple(range(depth))} if depth else {}
        if output_stride is not None:
            options["output_stride"] = output_stride
        try:
            self.model = timm.create_model(name, features_only=True, in_chans=in_channels, pretrained=False,
                                           **options)
        except (TypeError, AssertionError, NotImplementedError):
            if output_stride is None:
                raise
            # Models without dilation support reject the argument (ViTs) or assert on it.
            raise ConfigError(f"encoder '{name}' cannot run at output stride {output_stride}; use a CNN encoder "
                              "timm can dilate (resnet34, efficientnet_lite0, ...)") from None
        if weights == "imagenet":
            self.load_state(imagenet_state_dict(name), f"ImageNet weights of '{name}'")
        elif weights not in (None, "none"):
            self.load_weights(weights)
        self.channels: list[int] = self.model.feature_info.channels()
        self.reductions: list[int] = self.model.feature_info.reduction()

    def load_weights(self, path: str | Path) -> None:
        """Load a classifier or encoder state dict from a local file (classifier keys are skipped)."""
        self.load_state(read_state_dict(path), str(path))

    def load_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load the encoder's part of a timm classifier state dict; ``source`` names it in errors."""
        import timm  # here: see __init__

        own = self.model.state_dict()
        first_conv = next((k for k, v in own.items() if v.ndim == 4), None)
        if first_conv in state and state[first_conv].shape[1] != own[first_conv].shape[1]:
            # Grayscale or multispectral input: timm's rule sums or repeats the RGB filters.
            state[first_conv] = timm.models.adapt_input_conv(own[first_conv].shape[1], state[first_conv])
        missing = [k for k in own if k not in state]
        if missing:
            raise CheckpointError(f"{source}: does not fit this encoder ({len(missing)} weights missing, e.g. "
                                  f"'{missing[0]}'); is it a checkpoint of another architecture?")
        wrong = [k for k, v in own.items() if state[k].shape != v.shape]
        if wrong:
            raise CheckpointError(f"{source}: weight '{wrong[0]}' has shape {tuple(state[wrong[0]].shape)}, the "
                                  f"encoder needs {tuple(own[wrong[0]].shape)}; is it another model size?")
        self.model.load_state_dict({k: state[k] for k in own})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)
