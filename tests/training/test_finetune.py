"""Fine-tuning controls: frozen encoder epochs, a slower encoder, and model options from the CLI."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.testing import run_main
from pixelwise.training.config import TrainConfig
from pixelwise.training.trainer import set_seed, train

SMALL_RESNET = {"decoder_channels": [16, 16, 8, 8, 8]}


def recipe(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), img_size=(32, 48), batch_size=4, workers=0, progress=False,
                model="unet", encoder="resnet18", model_kwargs=SMALL_RESNET, precision="fp32", lr=3e-3,
                schedule="constant", seed=5)
    return TrainConfig(**{**base, **kw})


def initial_parameters(config: TrainConfig, num_classes: int) -> dict[str, torch.Tensor]:
    set_seed(config.seed)  # the trainer seeds the same way right before building the model
    model = pixelwise.create_model("unet", num_classes=num_classes, encoder="resnet18", **SMALL_RESNET)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefix: str) -> list[str]:
    return [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]


def test_frozen_encoder_epochs_train_the_decoder_only(tiny_data, tmp_path):
    config = recipe(tiny_data, tmp_path / "one", epochs=1, freeze_encoder_epochs=1)
    train(config)
    start = initial_parameters(config, num_classes=6)
    after_one = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    assert changed(start, after_one, "encoder.") == []
    assert changed(start, after_one, "decoder.")  # the decoder trained meanwhile

    train(recipe(tiny_data, tmp_path / "two", epochs=2, freeze_encoder_epochs=1))
    after_two = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    encoder_keys = [k for k in start if k.startswith("encoder.")]
    assert set(changed(start, after_two, "encoder.")) == set(encoder_keys)  # unfrozen in epoch 2


def test_encoder_lr_mult_scales_the_encoder_steps(tiny_data, tmp_path):
    config = recipe(tiny_data, tmp_path / "slow", epochs=1, encoder_lr_mult=1e-9)
    train(config)
    start = initial_parameters(config, num_classes=6)
    after = load_file(str(tmp_path / "slow" / "last" / "model.safetensors"))
    encoder_steps = max((after[k] - start[k]).abs().max().item() for k in start if k.startswith("encoder."))
    decoder_steps = max((after[k] - start[k]).abs().max().item() for k in start if k.startswith("decoder."))
    # AdamW moves a weight by about lr per step: 3 steps of 3e-3 for the decoder, 1e-9 of that for the encoder.
    assert encoder_steps < 1e-9 < 1e-3 < decoder_steps


def test_models_without_an_encoder_refuse_encoder_options(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="model 'sepres_unet' has no separate encoder"):
        train(recipe(tiny_data, tmp_path / "x", model="sepres_unet", encoder=None, model_kwargs={"widths": [4, 8]},
                     epochs=1, freeze_encoder_epochs=1))
    assert not (tmp_path / "x").exists()


def test_cli_model_options_reach_the_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "ps"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), "--epochs", "1", "--img-size", "32x48",
                      "--workers", "0", "--no-progress", "--upsample", "pixelshuffle", "--model-option", "blur=true",
                      "--model-option", "base_filters=4", "--model-option", "depth=2")
    assert result.returncode == 0, result.stderr
    meta = pixelwise.load_model(out / "best.safetensors").meta
    assert meta.model_kwargs["upsample"] == "pixelshuffle" and meta.model_kwargs["blur"] is True
    assert meta.model_kwargs["base_filters"] == 4 and meta.model_kwargs["depth"] == 2


@pytest.mark.parametrize("args,message", [
    (["--model-option", "base_filters"], "write KEY=VALUE"),
    (["--model-option", "filters=3"], "model 'unet' has no option 'filters'"),
    (["--upsample", "nearest"], "nearest"),
    (["--encoder-lr-mult", "0"], "encoder_lr_mult"),
])
def test_cli_bad_model_options(args, message, tiny_data, tmp_path):
    result = run_main("train", "--data", str(tiny_data), "--out", str(tmp_path / "bad"), "--epochs", "1",
                      "--workers", "0", "--no-progress", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_compile_that_fails_trains_eager_with_one_warning(tiny_data, tmp_path, monkeypatch, capsys):
    def broken_compile(model):
        def run(x):
            raise RuntimeError("inductor needs a C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    config = recipe(tiny_data, tmp_path / "c", epochs=1, compile=True, encoder=None, model_kwargs={"base_filters": 4,
                                                                                                  "depth": 2})
    result = train(config)
    assert result.epochs_done == 1 and result.best_metrics
    assert "warning: torch.compile failed (inductor needs a C++ compiler); running eager" in capsys.readouterr().err
