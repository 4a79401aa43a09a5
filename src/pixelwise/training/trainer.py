"""The training loop, on HF Accelerate (one process, DDP across processes or machines).

The run folder's files are listed in :mod:`pixelwise.training.outputs`.

:meth:`Trainer.fit` reads as the loop it runs: set up, then per epoch :meth:`~Trainer.train_epoch`,
:meth:`~Trainer.validate` and :meth:`~Trainer.end_epoch`. The parts live beside this module:
``data_setup`` (dataset, cache, loaders), ``model_setup`` (model, optimizer), ``sampler`` (who sees
which image), ``run_dir`` (the run folder), ``distributed`` (what the processes of a DDP job agree on),
``outputs`` (the files above), ``state`` (``last/``, for ``--resume``), ``schedule`` (the lr) and
``report`` (report.html, written when training ends).

Example (a few seconds on tiny built-in data; the run logs one line per epoch):

>>> import contextlib, io, tempfile
>>> from pixelwise.data.synthetic import write_dataset
>>> tmp = Path(tempfile.mkdtemp())
>>> data = write_dataset(tmp / "data", n_train=8, n_val=2, height=32, width=32)
>>> config = TrainConfig(data=str(data), out=str(tmp / "run"), img_size=32, epochs=1, batch_size=4, workers=0,
...                      precision="fp32", device="cpu", cache=False, model_kwargs={"base_filters": 4, "depth": 2})
>>> with contextlib.redirect_stdout(io.StringIO()):  # the log lines
...     result = train(config)
>>> result.epochs_done, result.stop_reason, result.best_checkpoint.is_file()
(1, 'epochs done', True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from pixelwise.core.device import compile_or_eager, resolve_device, resolve_precision, resolve_workers
from pixelwise.core.errors import ConfigError
from pixelwise.core.faults import fault_point
from pixelwise.core.metrics import selection_score
from pixelwise.data.transforms import normalize
from pixelwise.models.checkpoint import CheckpointMeta
from pixelwise.training import outputs
from pixelwise.training.batch_guard import BatchGuard
from pixelwise.training.config import TrainConfig
from pixelwise.training.data_setup import TrainData, inference_tile, prepare_data, resolve_class_weights, train_loader
from pixelwise.training.distributed import SharedClock, accelerator_for, mean_across_processes, sync_buffers
from pixelwise.training.ema import WeightAverage
from pixelwise.training.evaluate import evaluate_model
from pixelwise.training.finetune import set_encoder_frozen
from pixelwise.training.losses import build_loss
from pixelwise.training.model_setup import build_model_and_optimizer
from pixelwise.training.report import write_report_or_warn
from pixelwise.training.run_dir import RECIPE_FILES, agreed_run_dir
from pixelwise.training.save_schedule import SaveSchedule
from pixelwise.training.schedule import lr_factor, training_progress
from pixelwise.training.state import TrainState, has_state, load_state, save_state


@dataclass
class TrainResult:
    """What :func:`train` returns: where the run is, its best checkpoint and metrics, and why it stopped."""

    run_dir: Path
    best_checkpoint: Path
    best_metrics: dict[str, Any]
    epochs_done: int
    stop_reason: str
    history: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True  # False in the other processes of a DDP job: they should print nothing
    report: Path | None = None  # RUN_DIR/report.html, when it was written


@dataclass
class EpochStats:
    """What the training pass of one epoch measured, for its row in metrics.csv and its log line."""

    epoch: int  # 0-based, as in TrainState
    label: str  # "epoch 3/40": the progress bar's and the log line's name for it
    seconds: float = 0.0  # the shared clock after the last step: it sets the lr and the stop
    rate: float = 0.0  # training images per second, all processes together
    out_of_time: bool = False  # the time budget ran out during this epoch


class Trainer:
    """One training run: ``Trainer(config, resume).fit()``, or simply :func:`train`."""

    # Made by _set_up() at the start of fit():
    data: TrainData
    model: nn.Module  # as Accelerate prepared it (wrapped in DDP under a launcher)
    raw_model: nn.Module  # the model itself: trained, restored, and evaluated and saved unless ema is set
    ema: WeightAverage | None  # the EMA of raw_model's weights, when the recipe's ema is set
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]  # the training forward (compiled when asked)
    meta: CheckpointMeta
    state: TrainState
    clock: SharedClock
    budget: float | None  # the time budget in seconds
    steps_per_epoch: int
    total_steps: int | None
    best_metrics: dict[str, Any]  # of this session; every process has them (they are all-reduced)

    def __init__(self, config: TrainConfig, resume: bool = False, plan: list[dict[str, Any]] | None = None,
                 stage_of: TrainConfig | None = None) -> None:
        self.config = config
        self.resume = resume
        self.plan = plan  # the planner's records, when the recipe was planned (written to plan.yaml)
        # A stage of a staged run (training/stages.py): --resume continues the whole run. Its final stage
        # trains in the whole run's folder, beside the first stage, and writes the whole recipe as config.yaml.
        self.whole_run = Path(str(stage_of.out)) if stage_of is not None else None
        final_stage = stage_of is not None and Path(str(config.out)) == self.whole_run
        self.recipe = stage_of if final_stage and stage_of is not None else config
        if config.data is None:
            raise ConfigError("no --data given; point it at a dataset folder (or run `pixelwise demo`)")
        device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, device)
        self.accelerator = accelerator_for(device, self.precision, freeze_encoder=bool(config.freeze_encoder_epochs))
        self.device = self.accelerator.device
        self.channels_last = config.channels_last if config.channels_last is not None else self.precision != "fp32"
        self.is_main = self.accelerator.is_main_process
        owned = frozenset({outputs.STAGE_1, *RECIPE_FILES}) if final_stage else frozenset()
        self.run_dir = agreed_run_dir(self.accelerator, config.out, resume, owned)

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated and saved: the EMA when ``ema`` is set (the raw ones keep training)."""
        return self.ema.module if self.ema is not None else self.raw_model

    def log(self, message: str) -> None:
        if self.is_main:
            tqdm.write(message)

    def fit(self) -> TrainResult:
        """Train until the epochs, the time budget or the patience run out (or Ctrl-C); return the best."""
        self._set_up()
        stop_reason = "epochs done"
        try:
            while self.config.epochs is None or self.state.epoch < self.config.epochs:
                stats = self.train_epoch()
                metrics, val_loss, previews = self.validate()
                self.end_epoch(stats, metrics, val_loss, previews)
                reason = self._stop_reason(stats)
                if reason is not None:
                    stop_reason = reason
                    break
        except KeyboardInterrupt:
            self._save_interrupted()
            stop_reason = "interrupted"
        if not self.best_metrics:
            # A resumed run that did not improve: the best is the earlier session's. (Had this session
            # improved, rank 0 might still be writing the file while another process read it.)
            self.best_metrics = outputs.read_best_metrics(self.run_dir)
        report = None
        if self.is_main and stop_reason != "interrupted":  # after Ctrl-C, stop now; --resume writes it later
            # Never fails the run: an error is one warning line (see training/report.py).
            report = write_report_or_warn(self.run_dir, self.data.index, self.device, self.log,
                                          resolve_workers(self.config.workers, self.device))
        return TrainResult(self.run_dir, self.run_dir / outputs.BEST_CHECKPOINT, self.best_metrics, self.state.epoch,
                           stop_reason, self.state.history, is_main=self.is_main, report=report)

    # ------------------------------------------------------------------------------ set-up
    def _set_up(self) -> None:
        """Data, model, optimizer, loss and state, in the order that makes a run reproducible."""
        cfg = self.config
        self.data = prepare_data(cfg, self.accelerator, self.log)
        classes = self.data.classes
        if cfg.score_class is not None and cfg.score_class not in classes.names:
            raise ConfigError(f"score_class '{cfg.score_class}' is not a class of this data; its classes: "
                              f"{', '.join(classes.names)}")
        set_seed(cfg.seed)  # python, numpy and torch: the same seed gives the same initial weights
        cpu_bf16 = self.device.type == "cpu" and self.precision == "bf16"
        model, optimizer = build_model_and_optimizer(cfg, classes.num_classes, self.channels_last, cpu_bf16)
        weights = resolve_class_weights(cfg.class_weights, self.data.train_scan, classes.names, self.log)
        self.loss_fn = build_loss(cfg.loss, classes.num_classes, weights).to(self.device)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.raw_model = self.accelerator.unwrap_model(self.model)
        # The EMA copy is made before any step, and before a resumed state replaces both.
        self.ema = WeightAverage(self.raw_model, cfg.ema) if cfg.ema else None
        # Only the training forward is compiled; evaluation runs the eager model (one compile, not two).
        self.forward = compile_or_eager(self.model) if cfg.compile else self.model
        # Trained on crops at native resolution: large images are then predicted by tiles of the crop's size.
        tile = inference_tile(cfg.img_size, cfg.crop_size, self.data.train_scan.sizes)
        self.meta = CheckpointMeta.for_model(self.raw_model, classes, input_size=cfg.img_size, tile=tile,
                                             predict_scale=cfg.predict_scale)
        n_params = sum(p.numel() for p in self.raw_model.parameters())
        self.state = self._start_or_resume()
        self.log(f"model: {cfg.model}{' / ' + cfg.encoder if cfg.encoder else ''} ({n_params / 1e6:.2f}M params); "
                 f"device {self.device.type}, precision {self.precision}"
                 f"{', channels_last' if self.channels_last else ''}, {self.accelerator.num_processes} process(es)")
        self.budget = cfg.time_budget_seconds
        self.steps_per_epoch = max(len(self.data.sampler) // cfg.batch_size, 1)
        self.total_steps = cfg.epochs * self.steps_per_epoch if cfg.epochs else None
        self.clock = SharedClock(self.state.elapsed, self.budget, self.accelerator.num_processes, self.device)
        self.best_metrics = {}
        self.saves = SaveSchedule(cfg.save_every)
        self.guard = BatchGuard(cfg.max_bad_batches, self.log, self.state.bad_batches)

    def _start_or_resume(self) -> TrainState:
        """A fresh state (and the recipe written into the new run folder), or the one ``--resume`` continues."""
        if self.resume and not has_state(self.run_dir / "last"):
            # Killed before its first save: nothing to continue, so the run starts over where it was.
            self.log(f"{self.run_dir}: no training state was saved yet (last/ is missing); starting the run over "
                     "in the same folder")
            self.resume = False
        if not self.resume:
            if self.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                outputs.write_config(self.run_dir, self.recipe,
                                     self.data.classes if self.data.index.classes_inferred else None, self.plan)
            return TrainState()
        state = load_state(self.run_dir / "last", self.raw_model, self.optimizer, self.ema)
        if not self.is_main:
            # The saved running train loss is rank 0's share; summed over processes at the end of the
            # epoch it must be counted once, not once per process.
            state.loss_sum, state.loss_count = 0.0, 0
        self.log(f"resuming {self.run_dir} at epoch {state.epoch + 1}, step {state.step}")
        return state

    # ---------------------------------------------------------------------------- the loop
    def train_epoch(self) -> EpochStats:
        """One pass over this process's share of the training set (what is left of it, when resuming)."""
        cfg, state = self.config, self.state
        stats = EpochStats(state.epoch, f"epoch {state.epoch + 1}" + (f"/{cfg.epochs}" if cfg.epochs else ""))
        self.data.sampler.set_epoch(stats.epoch, skip=state.step_in_epoch * cfg.batch_size)
        self.data.train_set.set_epoch(stats.epoch)
        self.model.train()
        if cfg.freeze_encoder_epochs:
            # Decided by the epoch number alone, so a resumed run freezes exactly as the original.
            set_encoder_frozen(self.raw_model, stats.epoch < cfg.freeze_encoder_epochs)
        loader = train_loader(self.data.train_set, self.data.sampler, cfg, stats.epoch, self.device)
        bar = tqdm(loader, desc=stats.label, leave=False, initial=state.step_in_epoch, total=self.steps_per_epoch,
                   disable=None if cfg.progress and self.is_main else True, dynamic_ncols=True)
        tick, images_seen = time.monotonic(), 0
        stats.seconds = self.clock()
        for batch in bar:
            factor = self._lr_factor(stats.seconds)
            self._train_step(batch, factor)
            images_seen += batch["image"].shape[0]
            stats.rate = images_seen * self.accelerator.num_processes / max(time.monotonic() - tick, 1e-9)
            bar.set_postfix(loss=f"{state.loss_sum / max(state.loss_count, 1):.4f}", img_s=f"{stats.rate:.1f}",
                            lr=f"{cfg.lr * factor:.2e}")
            stats.seconds = self.clock()
            if self.saves.due(state.step):  # inside long epochs too: a SIGKILL loses at most save_every
                state.elapsed = self.clock.local()
                self._save_last()
            if self.budget and stats.seconds >= self.budget:
                stats.out_of_time = True
                break
        bar.close()
        state.elapsed = self.clock.local()
        return stats

    def _train_step(self, batch: dict, factor: float) -> None:
        """One optimizer step at ``factor`` times the base lr; a batch with a NaN/inf loss or gradient is
        skipped before it changes the weights (see training/batch_guard.py)."""
        cfg, state = self.config, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor * group.get("lr_mult", 1.0)
        images = normalize(batch["image"].to(self.device, non_blocking=True), self.meta.mean, self.meta.std)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = batch["mask"].to(self.device, non_blocking=True)
        buffers = self.guard.buffers(self.raw_model)
        with self.accelerator.autocast():
            logits = self.forward(images)
        loss = self.loss_fn(logits, target)
        problem = self.guard.loss_problem(loss, self.accelerator)
        if problem is None:
            self.accelerator.backward(loss)
            norm = self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            # Under fp16 the grad scaler itself skips steps with inf gradients (and lowers its scale). The
            # clipped norm, when there is one, says it in one number.
            if self.precision != "fp16" and not (self.guard.finite(norm) if norm is not None
                                                 else self.guard.finite_grads(self.raw_model.parameters())):
                problem = "a gradient is NaN or inf"
        state.step += 1  # a skipped batch still counts: --resume then skips exactly the batches already seen
        state.step_in_epoch += 1
        if problem is not None:
            self.optimizer.zero_grad(set_to_none=True)
            self.guard.restore(self.raw_model, buffers)
            state.bad_batches += 1
            files = [str(self.data.train_set.samples[int(i)].image) for i in batch.get("index", [])]
            self.guard.skip(problem, state.step, files)
            return
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.raw_model)
        state.loss_sum += float(loss.detach())
        state.loss_count += 1

    def _lr_factor(self, seconds: float) -> float:
        """The schedule's multiplier of the base lr now (``seconds``: the shared clock)."""
        progress = training_progress(self.state.step, self.total_steps, seconds, self.budget)
        return lr_factor(self.config.schedule, progress, self.config.warmup)

    def validate(self) -> tuple[dict[str, Any], float | None, list[outputs.Preview]]:
        """Metrics and loss of the whole validation set (each process scores its slice; all get the sums)."""
        classes, meta = self.data.classes, self.meta
        fault_point("in-validation")  # where a test kills us: after a whole epoch's steps, before its save
        previews = outputs.PreviewCollector(self.data.val_set, self.config.num_preview if self.is_main else 0)
        sync_buffers(self.raw_model, self.accelerator.num_processes)
        # The unwrapped model: under DDP each process scores its own share of the images, a different
        # number of batches, and DDP's forward would wait for the same count everywhere.
        cm, val_loss = evaluate_model(
            self.eval_model, self.data.val_loader, classes.num_classes, meta.mean, meta.std, self.device,
            self.precision, self.loss_fn, classes.names, self.channels_last, on_batch=previews,
            across_processes=True,
        )
        return cm.compute(), val_loss, previews.previews

    def end_epoch(self, stats: EpochStats, metrics: dict[str, Any], val_loss: float | None,
                  previews: list[outputs.Preview]) -> None:
        """Record the epoch: its row, the best checkpoint if it improved, the state that --resume reads."""
        cfg, state = self.config, self.state
        row = {"epoch": stats.epoch + 1, "step": state.step, "lr": cfg.lr * self._lr_factor(stats.seconds),
               "train_loss": mean_across_processes(state.loss_sum, state.loss_count, self.device),
               "val_loss": val_loss, "val_miou": metrics["miou"], "val_pixel_accuracy": metrics["pixel_accuracy"],
               "val_mean_accuracy": metrics["mean_accuracy"], "images_per_s": round(stats.rate, 2),
               "elapsed_s": round(state.elapsed, 1)}
        # Decided from all-reduced metrics, so every process takes the same branch (and the same
        # early stop in fit).
        score = selection_score(metrics, cfg.score_class)
        if cfg.score_class is not None:
            row["val_score"] = score
        # A final fit trained on the val images: their score cannot choose an epoch, so the last one is kept.
        improved = score > state.best_score or cfg.final_fit
        if improved and self.is_main:
            outputs.save_best(self.run_dir, self.eval_model, self.meta, metrics, stats.epoch + 1, previews,
                              self.data.classes)
        # Only now does the state record the epoch as done: a Ctrl-C while the files above were
        # written saves a state that validates this epoch again on --resume, rather than one
        # whose best_score belongs to a checkpoint that was never written.
        state.history.append(row)
        if improved:
            self.best_metrics = metrics
            state.best_score, state.best_epoch, state.stale = score, stats.epoch + 1, 0
        else:
            state.stale += 1
        state.epoch, state.step_in_epoch, state.loss_sum, state.loss_count = stats.epoch + 1, 0, 0.0, 0
        self._save_last()
        if self.is_main:
            outputs.write_history(self.run_dir, state.history)
        self.log(f"{stats.label}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
                 f"val mIoU {metrics['miou']:.4f}"
                 + (f", {cfg.score_class} IoU {score:.4f}" if cfg.score_class else "")
                 + f"{' (best)' if improved else ''}, "
                 f"{stats.rate:.1f} img/s, {state.elapsed:.0f}s")

    def _stop_reason(self, stats: EpochStats) -> str | None:
        """Why training stops after this epoch, or None to go on (the epoch count is fit's loop condition)."""
        if stats.out_of_time:
            return "time budget spent"
        if self.config.patience and self.state.stale >= self.config.patience:
            return f"early stop: no better val score in {self.config.patience} epochs"
        return None

    def _save_interrupted(self) -> None:
        """After Ctrl-C: save the state of the last finished step, and say how to continue."""
        self.state.elapsed = self.clock.local()
        self._save_last()
        self.log(f"interrupted: training state saved in {self.run_dir / 'last'}; "
                 f"continue with: pixelwise train --out {self.whole_run or self.run_dir} --resume")


    def _save_last(self) -> None:
        """Replace last/ with the state of the last finished step (rank 0 writes it; it holds every rank's)."""
        if self.is_main:
            save_state(self.run_dir / "last", self.raw_model, self.optimizer, self.state, self.ema)
        self.saves.saved()


def train(config: TrainConfig, resume: bool = False, plan: list[dict[str, Any]] | None = None,
          stage_of: TrainConfig | None = None) -> TrainResult:
    """Train as the recipe says; returns where the run is and its best validation metrics. ``plan``: the
    planner's records when the recipe was planned (see :mod:`pixelwise.training.plan_dataset`). ``stage_of``:
    the whole recipe, when this is the final stage of a staged run (see :mod:`pixelwise.training.stages`)."""
    return Trainer(config, resume, plan, stage_of).fit()
