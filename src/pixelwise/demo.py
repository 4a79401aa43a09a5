"""``pixelwise demo``: the whole job on built-in data, in about two minutes on a laptop CPU.

Generates the synthetic street scenes, trains the classic U-Net, evaluates the best checkpoint on
the validation split and writes predictions for a few validation images.

>>> demo = TrainConfig(data="synthetic-streets", time_budget="2m", **DEMO_RECIPE)  # the recipe run_demo trains
>>> demo.model, demo.img_size, demo.time_budget_seconds
('unet', (128, 160), 120.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixelwise.core.metrics import format_table
from pixelwise.data.cache import cache_dir
from pixelwise.data.synthetic import write_dataset
from pixelwise.inference.predictor import predict_to_folder
from pixelwise.training.config import TrainConfig
from pixelwise.training.evaluate import evaluate_checkpoint
from pixelwise.training.run_dir import new_run_dir
from pixelwise.training.trainer import TrainResult, train

# The demo's recipe: a small classic U-Net at the data's native 128x160, one-cycle AdamW.
DEMO_RECIPE = {
    "img_size": (128, 160),
    "model": "unet",
    "model_kwargs": {"base_filters": 16, "depth": 4},
    "batch_size": 8,
    "lr": 3e-3,
    "schedule": "onecycle",
    "workers": 1,
}


@dataclass
class DemoResult:
    """Where the demo wrote its run, the best checkpoint's val mIoU, and the training's own result."""

    run_dir: Path
    miou: float
    train: TrainResult


def run_demo(out: str | Path | None = None, time_budget: str = "2m", progress: bool = True) -> DemoResult:
    """Train on the synthetic scenes for ``time_budget``, then evaluate and predict into the run folder.

    Besides the training's files, the run folder gets ``metrics.json``, ``confusion.png`` and
    ``predictions/`` (the label maps of eight validation images). Without ``out`` it is ``runs/demo-<time>``.
    """
    run_dir = new_run_dir(str(out) if out else None, resume=False)
    if out is None:
        run_dir = run_dir.with_name("demo-" + run_dir.name)
    data = write_dataset(cache_dir() / "synthetic-streets")
    config = TrainConfig(data=str(data), out=str(run_dir), time_budget=time_budget, progress=progress,
                         **DEMO_RECIPE)
    result = train(config)
    metrics = evaluate_checkpoint(result.best_checkpoint, data, "val", json_path=run_dir / "metrics.json",
                                  confusion_png=run_dir / "confusion.png")
    print(format_table(metrics))
    val_images = sorted((Path(data) / "images" / "val").iterdir())[:8]
    predict_to_folder(result.best_checkpoint, val_images, run_dir / "predictions", progress=progress)
    return DemoResult(run_dir, metrics["miou"], result)
