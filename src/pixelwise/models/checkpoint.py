"""Checkpoints: weights in safetensors, with everything needed to use them stored beside.

The metadata (architecture and init kwargs, classes, palette, ignore index, normalisation,
training input size, pixelwise version) is JSON in the safetensors header, so a checkpoint
rebuilds its model alone and loading never unpickles anything.

>>> import tempfile, os, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
>>> save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("binary")))
>>> load_model(path).init_kwargs["base_filters"]
4
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as tensors_to_bytes

from pixelwise.core.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.core.files import atomic_path
from pixelwise.core.version import __version__
from pixelwise.data.classes import ClassSpec
from pixelwise.models.registry import create_model

FORMAT_VERSION = 1


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its model besides the weights."""

    model: str
    model_kwargs: dict[str, Any]
    classes: ClassSpec
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: tuple[int, int] | None = None
    tile: tuple[int, int] | None = None  # trained on crops of this size at native resolution: predict by tiles
    # Images are resized to input_size and then enlarged this much when predicted (see TrainConfig.predict_scale).
    predict_scale: float = 1.0
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: nn.Module, classes: ClassSpec, **kwargs: Any) -> CheckpointMeta:
        """Metadata for a model built by :func:`pixelwise.create_model` (or a registered model class)."""
        if not getattr(model, "model_name", ""):
            raise ConfigError(f"{type(model).__name__} is not a registered model, so a checkpoint could not rebuild "
                              "it; decorate its class with @register_model(\"name\")")
        # Pretrained weights are inside the checkpoint: rebuilding must not look for them again.
        model_kwargs = {k: v for k, v in model.init_kwargs.items() if k != "encoder_weights"}
        return cls(model=model.model_name, model_kwargs=model_kwargs, classes=classes, **kwargs)

    def to_json(self) -> str:
        data = asdict(self)
        data["classes"] = self.classes.model_dump()
        data["version"] = __version__
        data["format_version"] = FORMAT_VERSION
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> CheckpointMeta:
        data = json.loads(text)
        data.pop("format_version", None)
        data["classes"] = ClassSpec.model_validate(data["classes"])
        data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
        for key in ("input_size", "tile"):
            if data.get(key):
                data[key] = tuple(data[key])
        return cls(**data)


def other_prediction_size(meta: CheckpointMeta, input_size: tuple[int, int] | None | str = "model",
                          predict_scale: float | None = None) -> CheckpointMeta:
    """``meta`` predicting at another ``input_size`` (``None``: the images' own; ``"model"``: its own) and/or
    ``predict_scale`` (``None``: its own), e.g. to score a model at another size than the one it was trained at."""
    if input_size != "model":
        meta = replace(meta, input_size=input_size)
    if predict_scale is not None:
        meta = replace(meta, predict_scale=predict_scale)
    return meta


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta) -> None:
    """Write weights + metadata atomically (a crash mid-write never leaves a half file at ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    if getattr(model, "model_name", "") != meta.model:
        # An ensemble, or another model than the metadata names: the file would not load back.
        raise ConfigError(f"{path}: the model is not the '{meta.model}' its metadata names, so the checkpoint "
                          "could not rebuild it; save each registered model on its own")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        # In memory first, written by Python: a full disk is an OSError naming the file (safetensors' own
        # writer raises its own error type).
        tmp.write_bytes(tensors_to_bytes(state, metadata={"pixelwise": meta.to_json()}))


def read_meta(path: str | Path) -> CheckpointMeta:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; pass the .safetensors file a training run wrote")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({str(e).splitlines()[0]}); "
                              "the file is truncated or corrupt, use another checkpoint") from None
    if "pixelwise" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without pixelwise metadata; it was not written by "
                              "pixelwise (for encoder weights use --encoder-weights)")
    try:
        return CheckpointMeta.from_json(metadata["pixelwise"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # AttributeError: JSON that is not an object
        raise CheckpointError(f"{path}: pixelwise metadata is damaged ({e.__class__.__name__})") from None


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model stored at ``path`` and load its weights; returns ``(model, meta)``."""
    meta = read_meta(path)
    model = create_model(meta.model, **meta.model_kwargs)
    try:
        state = load_file(str(path), device=device)
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: weights cannot be loaded ({str(e).splitlines()[0][:200]}); the file is "
                              "truncated or corrupt") from None
    model.meta = meta
    return model.eval(), meta


def load_model(path: str | Path, device: str = "cpu") -> nn.Module:
    """The model of a checkpoint, in eval mode, with its metadata as ``model.meta``.

    >>> try:
    ...     load_model("missing.safetensors")
    ... except CheckpointError as e:
    ...     print(e)
    missing.safetensors: checkpoint not found; pass the .safetensors file a training run wrote
    """
    return load_checkpoint(path, device)[0]
