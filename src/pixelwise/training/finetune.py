"""Fine-tuning a pretrained encoder: a lower learning rate for it, and freezing it for the first epochs.

Pretrained features are already good; the randomly initialised decoder is not. Large early gradients
from the decoder can wreck the encoder's features, so the usual recipe (fastai's ``fine_tune``,
smp tutorials) trains the decoder alone for an epoch or two (``freeze_encoder_epochs``) and then
the whole network, the encoder at a fraction of the learning rate (``encoder_lr_mult``).

>>> import pixelwise
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> groups = parameter_groups(model, weight_decay=1e-4, encoder_lr_mult=0.1)
>>> [(g["name"], g["lr_mult"]) for g in groups]
[('encoder', 0.1), ('encoder/no_decay', 0.1), ('decoder', 1.0), ('decoder/no_decay', 1.0)]
>>> set_encoder_frozen(model, True)
>>> any(p.requires_grad for p in model.encoder.parameters())
False
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from pixelwise.core.errors import ConfigError


def encoder_of(model: nn.Module) -> nn.Module:
    """The model's encoder (every registered model with one calls it ``encoder``)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        name = getattr(model, "model_name", type(model).__name__)
        raise ConfigError(f"model '{name}' has no separate encoder to freeze or slow down; drop "
                          "--freeze-encoder-epochs / --encoder-lr-mult or pick a model with an encoder")
    return encoder


def parameter_groups(model: nn.Module, weight_decay: float, encoder_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """Optimizer groups: encoder and the rest, each split into decayed weights and undecayed biases/norms.

    Every group carries ``lr_mult``; the trainer sets each group's lr to ``base lr * schedule * lr_mult``.
    Without an encoder (or ``encoder_lr_mult == 1`` on a model without one) everything is "decoder".
    """
    # A multiplier other than 1 needs an encoder: encoder_of raises the clear error when there is none.
    has_encoder = isinstance(getattr(model, "encoder", None), nn.Module)
    encoder_ids = {id(p) for p in encoder_of(model).parameters()} if has_encoder or encoder_lr_mult != 1.0 else set()
    groups = []
    for part, mult in (("encoder", encoder_lr_mult), ("decoder", 1.0)):
        params = [p for p in model.parameters() if (id(p) in encoder_ids) == (part == "encoder")]
        # No weight decay on biases and norm parameters (standard practice; decaying BN scales hurts).
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups.append({"name": part, "params": decay, "weight_decay": weight_decay, "lr_mult": mult})
        groups.append({"name": f"{part}/no_decay", "params": no_decay, "weight_decay": 0.0, "lr_mult": mult})
    return [g for g in groups if g["params"]]


def set_encoder_frozen(model: nn.Module, frozen: bool) -> None:
    """Stop (or restart) the encoder's weights from training.

    Its batch-norm statistics still follow the new data (the model stays in train mode), as with
    fastai's default ``train_bn``; only the weights are held. Parameters without gradients are
    skipped by the optimizers, so a frozen encoder costs no update and no optimizer state.
    """
    for p in encoder_of(model).parameters():
        p.requires_grad_(not frozen)
