"""Fixtures of the server's tests: a small trained checkpoint, a street image, the app behind a test client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixelwise.testing import TINY_MODEL


@pytest.fixture(scope="session")
def served_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """A tiny U-Net trained for 3 epochs on ``tiny_data`` at 32x48: labels with several classes, in seconds."""
    from pixelwise.training.config import TrainConfig
    from pixelwise.training.trainer import train

    out = tmp_path_factory.mktemp("served") / "run"
    config = TrainConfig(data=str(tiny_data), out=str(out), img_size=(32, 48), model_kwargs=TINY_MODEL, epochs=3,
                         batch_size=4, lr=0.01, workers=0, precision="fp32", progress=False, seed=0)
    return train(config).best_checkpoint


@pytest.fixture(scope="session")
def street_png(tmp_path_factory) -> Path:
    """A synthetic street scene of 96x128 (twice the training images' size) as a PNG file."""
    from pixelwise.data.io import write_png
    from pixelwise.data.synthetic import make_scene

    image, _ = make_scene(np.random.default_rng(7), 96, 128)
    path = tmp_path_factory.mktemp("images") / "street.png"
    write_png(path, image)
    return path


@pytest.fixture(scope="module")
def service(served_checkpoint):
    """The checkpoint behind a batching service (PyTorch fp32, as the labels tests compare with `predict`)."""
    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.service import ModelService

    service = ModelService(lambda: Predictor(served_checkpoint, precision="fp32", backend="torch"), max_batch=4,
                           queue=8)
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(service):
    """FastAPI's test client on the app (its lifespan stops the service at the end)."""
    from fastapi.testclient import TestClient

    from pixelwise.serve.app import create_app

    with TestClient(create_app(service)) as client:
        yield client
