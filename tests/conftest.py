"""Shared fixtures: tiny datasets the tests write themselves (never the real data)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests must never reach a model hub: pretrained-weight code is exercised with local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Data caches and generated data go to a fresh folder, never the user's ~/.cache.
os.environ["PIXELWISE_CACHE"] = tempfile.mkdtemp(prefix="pixelwise-test-cache-")

@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Built-in street scenes in the ``folders`` layout: 12 train, 4 val images of 48x64."""
    from pixelwise.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("tiny") / "data", n_train=12, n_val=4, height=48, width=64)


@pytest.fixture(scope="session")
def pairs_data(tiny_data, tmp_path_factory) -> Path:
    """``tiny_data`` in the layout of CONTRIBUTING.md's example format: photos/, labels/, val.txt, classes.yaml."""
    import shutil

    root = tmp_path_factory.mktemp("pairs")
    (root / "photos").mkdir()
    (root / "labels").mkdir()
    for split in ("train", "val"):
        for image in sorted((tiny_data / "images" / split).glob("*.png")):
            shutil.copy(image, root / "photos" / image.name)
            shutil.copy(tiny_data / "masks" / split / image.name, root / "labels" / image.name)
    (root / "val.txt").write_text("\n".join(p.stem for p in sorted((tiny_data / "images" / "val").glob("*.png"))))
    shutil.copy(tiny_data / "classes.yaml", root / "classes.yaml")
    return root


# Fuzz tests (hypothesis): a few examples each in `make test`, many in `make fuzz` (PIXELWISE_FUZZ_EXAMPLES).
# No example database: a run leaves no files behind, and every run explores afresh.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a plugin's test environment without the dev extra: the fuzz modules skip themselves
    pass
else:
    settings.register_profile("pixelwise", max_examples=int(os.environ.get("PIXELWISE_FUZZ_EXAMPLES", "30")),
                              deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("pixelwise")
