"""Fuzzing recipe files and checkpoint metadata (hypothesis): any YAML gives a valid TrainConfig or one
ConfigError line naming the file; any metadata in a safetensors file gives a CheckpointMeta or a
CheckpointError naming the file. `make fuzz` runs many more examples."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
import torch  # noqa: E402
import yaml  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from pixelwise.core.errors import PixelwiseError  # noqa: E402
from pixelwise.models.checkpoint import read_meta  # noqa: E402
from pixelwise.training.config import TrainConfig, load_config  # noqa: E402

pytestmark = pytest.mark.fuzz
SCRATCH = Path(tempfile.mkdtemp(prefix="pixelwise-fuzz-"))
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["30m", "1h", "500 steps", "epoch", "auto", "none", "256x256", "0x0", "-1", "fp32", "ce"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
FIELDS = sorted(TrainConfig.model_fields)


@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), VALUES, max_size=6) | VALUES)
def test_recipe_files_parse_or_raise_config_error(data):
    path = SCRATCH / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        config = load_config(path)
    except PixelwiseError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert isinstance(config, TrainConfig)


META_KEYS = ["model", "model_kwargs", "classes", "mean", "std", "input_size", "tile", "version", "format_version"]


@given(st.dictionaries(st.sampled_from(META_KEYS) | st.text(max_size=5), VALUES, max_size=9) | VALUES
       | st.text(max_size=30))
def test_checkpoint_metadata_parses_or_raises_checkpoint_error(meta):
    path = SCRATCH / "model.safetensors"
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file({"w": torch.zeros(1)}, str(path), metadata={"pixelwise": text})
    try:
        read_meta(path)
    except PixelwiseError as e:
        assert str(e).startswith(str(path))
