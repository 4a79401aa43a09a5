"""The model and its optimizer, as the recipe asks for them.

>>> from pixelwise.training.config import TrainConfig
>>> cfg = TrainConfig(model_kwargs={"base_filters": 4, "depth": 2}, optimizer="sgd", encoder_lr_mult=0.1)
>>> model, optimizer = build_model_and_optimizer(cfg, num_classes=3, channels_last=False)
>>> type(optimizer).__name__, [(g["name"], g["lr_mult"]) for g in optimizer.param_groups][:2]
('SGD', [('encoder', 0.1), ('encoder/no_decay', 0.1)])
"""

from __future__ import annotations

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.models import create_model
from pixelwise.models.checkpoint import read_meta
from pixelwise.models.cpu_kernels import depthwise_in_fp32
from pixelwise.training.config import TrainConfig
from pixelwise.training.finetune import encoder_of, parameter_groups


def build_model(cfg: TrainConfig, num_classes: int, channels_last: bool, cpu_bf16: bool = False) -> nn.Module:
    """A new model of the recipe's architecture (with its pretrained encoder weights, if any).

    ``cpu_bf16``: training runs under CPU bf16 autocast, where depthwise convolutions are faster in fp32
    (see :mod:`pixelwise.models.cpu_kernels`).
    """
    kwargs = dict(cfg.model_kwargs)
    kwargs.update({"num_classes": num_classes, "encoder": cfg.encoder, "encoder_weights": cfg.encoder_weights})
    model = create_model(cfg.model, **kwargs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.init_from:
        load_init_weights(model, cfg.init_from)
    if cpu_bf16:
        depthwise_in_fp32(model)
    if cfg.freeze_encoder_epochs:
        encoder_of(model)  # fail now, not after the first epoch, when the model has no encoder
    return model


def load_init_weights(model: nn.Module, path: str) -> None:
    """Load the weights of the pixelwise checkpoint ``path`` into ``model``, which must be the same architecture
    with the same classes (a :class:`ConfigError` naming both otherwise)."""
    meta = read_meta(path)
    ours = {k: v for k, v in model.init_kwargs.items() if k != "encoder_weights"}
    if meta.model != model.model_name or meta.model_kwargs != ours:
        raise ConfigError(f"{path}: init_from holds a '{meta.model}' model {meta.model_kwargs}, this recipe builds "
                          f"'{model.model_name}' {ours}; use a checkpoint of the same model and classes")
    try:
        model.load_state_dict(load_file(path))
    except (SafetensorError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: weights cannot be loaded ({str(e).splitlines()[0][:200]})") from None


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over the parameter groups of :func:`~pixelwise.training.finetune.parameter_groups`."""
    groups = parameter_groups(model, cfg.weight_decay, cfg.encoder_lr_mult)
    # fused=True: one kernel over all parameters instead of a loop of small ops per tensor. For a
    # 24M-parameter U-Net on 2 CPU cores an AdamW step went from 65 to 19 ms (SGD 36 -> 17 ms),
    # 5-8% of a bf16 training step. Fused kernels exist on CPUs since torch 2.4 and on GPUs.
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=True)


def build_model_and_optimizer(cfg: TrainConfig, num_classes: int, channels_last: bool,
                              cpu_bf16: bool = False) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model and its optimizer; call it right after seeding, which fixes the initial weights."""
    model = build_model(cfg, num_classes, channels_last, cpu_bf16)
    return model, build_optimizer(model, cfg)
