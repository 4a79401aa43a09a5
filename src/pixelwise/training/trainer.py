"""The training loop, on HF Accelerate (one process, DDP across processes or machines).

A run directory holds everything a run wrote::

    RUN_DIR/config.yaml         the full recipe (resume and reproduce from it)
    RUN_DIR/best.safetensors    weights + metadata of the epoch with the best val mIoU
    RUN_DIR/best_metrics.json   that epoch's validation metrics
    RUN_DIR/last/               full training state of the latest step (``--resume`` continues it)
    RUN_DIR/metrics.csv         one row per epoch
    RUN_DIR/curves.png          loss and val mIoU per epoch
    RUN_DIR/predictions.png     image | truth | prediction for a few validation images

Example (a few seconds on tiny built-in data)::

    from pixelwise.training.config import TrainConfig
    from pixelwise.data.synthetic import write_dataset
    write_dataset("/tmp/pw-data", n_train=16, n_val=4, height=64, width=64)
    result = train(TrainConfig(data="/tmp/pw-data", img_size=64, epochs=1, out="/tmp/pw-run",
                               model_kwargs={"base_filters": 4, "depth": 3}))
    print(result.best_metrics["miou"])
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, broadcast, broadcast_object_list, set_seed
from torch.utils.data import DataLoader, Sampler, Subset
from tqdm.auto import tqdm

from pixelwise.core.device import (
    compile_or_eager,
    resolve_device,
    resolve_precision,
    resolve_workers,
    sum_across_processes,
)
from pixelwise.core.errors import ConfigError
from pixelwise.data.cache import build_cache, cache_dir, estimated_bytes
from pixelwise.data.checks import class_weights, scan_dataset
from pixelwise.data.dataset import SegmentationDataset, collate_padded
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.data.io import read_image
from pixelwise.data.transforms import eval_transform, normalize, train_transform
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.training.config import TrainConfig
from pixelwise.training.evaluate import evaluate_model
from pixelwise.training.finetune import encoder_of, parameter_groups, set_encoder_frozen
from pixelwise.training.losses import build_loss
from pixelwise.training.schedule import lr_factor
from pixelwise.training.state import TrainState, load_state, save_state


class EpochSampler(Sampler[int]):
    """Seeded shuffling, the same for a given (seed, epoch), sharded across processes.

    Every process gets the same number of samples (DDP needs equal step counts); ``skip`` drops the
    first samples of this process's share, which is how a resumed run re-enters an epoch mid-way.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _share(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        per_rank = self.size // self.world
        return order[self.rank :: self.world][:per_rank]

    def __iter__(self):
        return iter(self._share()[self.skip :])

    def __len__(self) -> int:
        return max(self.size // self.world - self.skip, 0)


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    best_metrics: dict[str, Any]
    epochs_done: int
    stop_reason: str
    history: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True  # False in the other processes of a DDP job: they should print nothing


def new_run_dir(out: str | None, resume: bool) -> Path:
    """The run directory; never one that holds an earlier run unless resuming it."""
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
        base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        run_dir, n = base, 1
        while run_dir.exists():
            run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
        return run_dir
    run_dir = Path(out)
    if resume:
        if not (run_dir / "last" / "state.pt").is_file():
            raise ConfigError(f"{run_dir}: no saved training state (last/state.pt) to resume; "
                              "train without --resume to start a new run")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir}: folder already holds files (an earlier run?); choose another --out, "
                          "or pass --resume to continue that run")
    return run_dir


def make_accelerator(cpu: bool, mixed_precision: str, handlers: list) -> Accelerator:
    """An ``Accelerator``, also when this process already made one with another precision or device.

    Accelerate keeps one state per process and refuses a second ``Accelerator`` that asks for another
    mixed precision: a notebook or a test suite that trains twice (fp32, then ``auto`` = bf16) would
    stop with "AcceleratorState has already been initialized". Outside a launcher there is no process
    group to keep, so the state is started afresh; under one, the launcher's state stands.
    """
    try:
        return Accelerator(cpu=cpu, mixed_precision=mixed_precision, kwargs_handlers=handlers)
    except ValueError as err:
        if "already been initialized" not in str(err) or PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(cpu=cpu, mixed_precision=mixed_precision, kwargs_handlers=handlers)


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config = config
        self.resume = resume
        if config.data is None:
            raise ConfigError("no --data given; point it at a dataset folder (or run `pixelwise demo`)")
        device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, device)
        mixed = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[self.precision]
        # Under torchrun / accelerate launch, Accelerate reads the launcher's environment (LOCAL_RANK,
        # WORLD_SIZE, ...): NCCL on GPUs, gloo when cpu=True. A frozen encoder gets no gradients, and
        # DDP fails on parameters without one unless told to look for them, which costs a graph walk
        # per step, so only runs that freeze pay it.
        handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if config.freeze_encoder_epochs else []
        self.accelerator = make_accelerator(device.type == "cpu", mixed, handlers)
        self.device = self.accelerator.device
        self.channels_last = config.channels_last if config.channels_last is not None else self.precision != "fp32"
        self.is_main = self.accelerator.is_main_process
        self.run_dir = self._agreed_run_dir(config.out, resume)

    def _agreed_run_dir(self, out: str | None, resume: bool) -> Path:
        """The run folder, chosen by rank 0 and told to every process, its refusal included.

        Each process deciding alone would race: a slow one would find the folder rank 0 just filled
        and refuse it, and a default name holds the time, which two processes can read a second apart.
        """
        answer: list[str | None] = [None, None]  # the folder, or the ConfigError message
        if self.is_main:
            try:
                answer[0] = str(new_run_dir(out, resume))
            except ConfigError as e:
                answer[1] = str(e)
        if self.accelerator.num_processes > 1:
            broadcast_object_list(answer, from_process=0)
        if answer[1] is not None:
            raise ConfigError(answer[1])
        return Path(str(answer[0]))

    def log(self, message: str) -> None:
        if self.is_main:
            tqdm.write(message)

    # ----------------------------------------------------------------------------------- data
    def _prepare_data(self) -> DatasetIndex:
        cfg = self.config
        index = open_dataset(cfg.data, cfg.format, cfg.classes)
        train_samples, val_samples = index.split(cfg.train_split), index.split(cfg.val_split)
        self.train_scan = scan_dataset(train_samples, index.classes, reader=index.reader)  # fails fast on a bad file
        scan_dataset(val_samples, index.classes, reader=index.reader)
        counts = self.train_scan.class_pixels
        absent = [n for n, c in zip(index.classes.names, counts[:-1], strict=True) if c == 0]
        self.log(f"data: {index.root} ({index.format}), {len(train_samples)} train / {len(val_samples)} val "
                 f"images, {index.classes.num_classes} classes"
                 + (f"; not in train: {', '.join(absent)}" if absent else ""))
        decoder = getattr(index.reader, "decoder", None)
        if decoder is not None and decoder.summary():
            self.log(f"warning: {decoder.summary()}")
        return index

    def _class_weights(self, names: list[str]) -> list[float] | None:
        weights = self.config.class_weights
        if isinstance(weights, str):
            weights = class_weights(self.train_scan, "median" if weights == "auto" else weights)
            self.log("class weights: " + ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=True)))
        return weights

    def _loaders(self, index: DatasetIndex) -> tuple[SegmentationDataset, EpochSampler, DataLoader]:
        cfg = self.config
        size = cfg.img_size
        if size is None:
            raise ConfigError("img_size is required for training (crops of one size make a batch); e.g. 256x256")
        train_samples, val_samples = index.split(cfg.train_split), index.split(cfg.val_split)
        train_reader = self._cached(train_samples, index, size, resize_mask=True)
        val_reader = self._cached(val_samples, index, size, resize_mask=False)  # metrics at full mask size
        train_set = SegmentationDataset(train_samples, index.classes, train_transform(size, cfg.augment),
                                        seed=cfg.seed, reader=train_reader)
        sampler = EpochSampler(len(train_set), cfg.seed, self.accelerator.process_index,
                               self.accelerator.num_processes)
        val_set = SegmentationDataset(val_samples, index.classes, eval_transform(size), augment=False,
                                      reader=val_reader)
        # Each process scores its own slice of the validation set, without the padding a
        # DistributedSampler adds, so the all-reduced confusion matrix counts every image once.
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        val_loader = DataLoader(Subset(val_set, range(rank, len(val_set), world)), batch_size=cfg.batch_size,
                                num_workers=resolve_workers(cfg.workers, self.device), collate_fn=collate_padded)
        return train_set, sampler, val_loader

    def _cached(self, samples: list, index: DatasetIndex, size: tuple[int, int], resize_mask: bool):
        """The decode-once cache of a split when enabled and small enough, else the format's reader."""
        cfg = self.config
        if not cfg.cache:
            return index.reader
        need = estimated_bytes(samples, index.reader, size, resize_mask)
        if need > cfg.cache_max_gb * 2**30:
            self.log(f"cache: {need / 2**30:.1f} GB needed > cache_max_gb {cfg.cache_max_gb}; reading files")
            return index.reader
        # One process per machine builds (the cache lives on each machine's disk); the others then find it.
        with self.accelerator.local_main_process_first():
            return build_cache(samples, index.reader, size, resize_mask, cache_dir() / "datacache",
                               progress=cfg.progress and self.is_main)

    def _train_loader(self, train_set: SegmentationDataset, sampler: EpochSampler, epoch: int) -> DataLoader:
        # A fresh loader per epoch, with its own seeded generator: worker seeds then never draw on
        # the global RNG, whose state (for dropout) a resumed run restores exactly.
        return DataLoader(train_set, batch_size=self.config.batch_size, sampler=sampler,
                          num_workers=resolve_workers(self.config.workers, self.device),
                          drop_last=len(sampler) >= self.config.batch_size,
                          generator=torch.Generator().manual_seed(self.config.seed + epoch),
                          persistent_workers=False, pin_memory=self.device.type == "cuda")

    # ---------------------------------------------------------------------------------- model
    def _model_and_optimizer(self, num_classes: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        cfg = self.config
        kwargs = dict(cfg.model_kwargs)
        kwargs.update({"num_classes": num_classes, "encoder": cfg.encoder, "encoder_weights": cfg.encoder_weights})
        model = create_model(cfg.model, **kwargs)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.freeze_encoder_epochs:
            encoder_of(model)  # fail now, not after the first epoch, when the model has no encoder
        groups = parameter_groups(model, cfg.weight_decay, cfg.encoder_lr_mult)
        # fused=True: one kernel over all parameters instead of a loop of small ops per tensor. For a
        # 24M-parameter U-Net on 2 CPU cores an AdamW step went from 65 to 19 ms (SGD 36 -> 17 ms),
        # 5-8% of a bf16 training step. Fused kernels exist on CPUs since torch 2.4 and on GPUs.
        if cfg.optimizer == "adamw":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
        else:
            optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=True)
        return model, optimizer

    # ------------------------------------------------------------------------------------ fit
    def fit(self) -> TrainResult:
        cfg = self.config
        index = self._prepare_data()
        classes = index.classes
        train_set, sampler, val_loader = self._loaders(index)
        set_seed(cfg.seed)  # python, numpy and torch: the same seed gives the same initial weights
        model, optimizer = self._model_and_optimizer(classes.num_classes)
        loss_fn = build_loss(cfg.loss, classes.num_classes, self._class_weights(classes.names)).to(self.device)
        model, optimizer = self.accelerator.prepare(model, optimizer)
        raw_model = self.accelerator.unwrap_model(model)
        # Only the training forward is compiled; evaluation runs the eager model (one compile, not two).
        forward = compile_or_eager(model) if cfg.compile else model
        meta = CheckpointMeta.for_model(raw_model, classes, input_size=cfg.img_size)
        n_params = sum(p.numel() for p in raw_model.parameters())

        state = TrainState()
        if self.resume:
            state = load_state(self.run_dir / "last", raw_model, optimizer)
            if not self.is_main:
                # The saved running train loss is rank 0's share; summed over processes at the end of the
                # epoch it must be counted once, not once per process.
                state.loss_sum, state.loss_count = 0.0, 0
            self.log(f"resuming {self.run_dir} at epoch {state.epoch + 1}, step {state.step}")
        elif self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        self.log(f"model: {cfg.model}{' / ' + cfg.encoder if cfg.encoder else ''} ({n_params / 1e6:.2f}M params); "
                 f"device {self.device.type}, precision {self.precision}"
                 f"{', channels_last' if self.channels_last else ''}, {self.accelerator.num_processes} process(es)")

        budget = cfg.time_budget_seconds
        steps_per_epoch = max(len(sampler) // cfg.batch_size, 1)
        total_steps = cfg.epochs * steps_per_epoch if cfg.epochs else None
        started = time.monotonic() - state.elapsed
        stop_reason = "epochs done"
        best_path = self.run_dir / "best.safetensors"
        best_metrics: dict[str, Any] = {}  # of this session; every process has them (they are all-reduced)

        def clock() -> float:
            """Training seconds so far. With a time budget they set the lr and the stop, which must be the
            same in every process (different lrs would drift the replicas apart; a process that stops
            alone would leave the others waiting in a collective), so rank 0's clock is used by all."""
            seconds = time.monotonic() - started
            if budget and self.accelerator.num_processes > 1:
                seconds = float(broadcast(torch.tensor([seconds], dtype=torch.float64, device=self.device))[0])
            return seconds

        def progress(seconds: float) -> float:
            fractions = [state.step / total_steps] if total_steps else []
            if budget:
                fractions.append(seconds / budget)
            return max(fractions)

        try:
            while cfg.epochs is None or state.epoch < cfg.epochs:
                epoch = state.epoch
                sampler.set_epoch(epoch, skip=state.step_in_epoch * cfg.batch_size)
                train_set.set_epoch(epoch)
                model.train()
                if cfg.freeze_encoder_epochs:
                    # Decided by the epoch number alone, so a resumed run freezes exactly as the original.
                    set_encoder_frozen(raw_model, epoch < cfg.freeze_encoder_epochs)
                label = f"epoch {epoch + 1}" + (f"/{cfg.epochs}" if cfg.epochs else "")
                bar = tqdm(self._train_loader(train_set, sampler, epoch), desc=label, leave=False,
                           initial=state.step_in_epoch, total=steps_per_epoch,
                           disable=None if cfg.progress and self.is_main else True, dynamic_ncols=True)
                tick, images_seen, out_of_time, rate = time.monotonic(), 0, False, 0.0
                seconds = clock()
                for batch in bar:
                    factor = lr_factor(cfg.schedule, progress(seconds), cfg.warmup)
                    for group in optimizer.param_groups:
                        group["lr"] = cfg.lr * factor * group.get("lr_mult", 1.0)
                    images = normalize(batch["image"].to(self.device, non_blocking=True), meta.mean, meta.std)
                    if self.channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    target = batch["mask"].to(self.device, non_blocking=True)
                    with self.accelerator.autocast():
                        logits = forward(images)
                    loss = loss_fn(logits, target)
                    self.accelerator.backward(loss)
                    if cfg.grad_clip:
                        self.accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)

                    state.step += 1
                    state.step_in_epoch += 1
                    loss_value = float(loss.detach())
                    state.loss_sum += loss_value
                    state.loss_count += 1
                    images_seen += images.shape[0]
                    rate = images_seen * self.accelerator.num_processes / max(time.monotonic() - tick, 1e-9)
                    bar.set_postfix(loss=f"{state.loss_sum / state.loss_count:.4f}", img_s=f"{rate:.1f}",
                                    lr=f"{cfg.lr * factor:.2e}")
                    if not math.isfinite(loss_value):
                        raise ConfigError(f"the loss became {loss_value} at step {state.step}; lower --lr "
                                          "or use --precision fp32")
                    seconds = clock()
                    if budget and seconds >= budget:
                        out_of_time = True
                        break
                bar.close()

                # ---- validation at the end of every epoch (or of the time budget)
                state.elapsed = time.monotonic() - started
                previews: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
                self._sync_buffers(raw_model)
                # The unwrapped model: under DDP each process scores its own share of the images, a different
                # number of batches, and DDP's forward would wait for the same count everywhere.
                cm, val_loss = evaluate_model(
                    raw_model, val_loader, classes.num_classes, meta.mean, meta.std, self.device, self.precision,
                    loss_fn, classes.names, self.channels_last,
                    on_batch=lambda b, p, kept=previews: self._collect_previews(b, p, val_loader, kept),
                    across_processes=True,
                )
                metrics = cm.compute()
                # The epoch's train loss over all processes' shares, not rank 0's alone.
                loss_totals = sum_across_processes(torch.tensor([state.loss_sum, state.loss_count],
                                                                dtype=torch.float64), self.device)
                row = {"epoch": epoch + 1, "step": state.step,
                       "lr": cfg.lr * lr_factor(cfg.schedule, progress(seconds), cfg.warmup),
                       "train_loss": float(loss_totals[0] / max(float(loss_totals[1]), 1.0)), "val_loss": val_loss,
                       "val_miou": metrics["miou"], "val_pixel_accuracy": metrics["pixel_accuracy"],
                       "val_mean_accuracy": metrics["mean_accuracy"], "images_per_s": round(rate, 2),
                       "elapsed_s": round(state.elapsed, 1)}
                # Decided from all-reduced metrics, so every process takes the same branch (and the same
                # early stop below).
                improved = metrics["miou"] > state.best_miou
                if improved and self.is_main:
                    meta.extra = {"epoch": epoch + 1, "val_miou": metrics["miou"]}
                    save_checkpoint(best_path, raw_model, meta)
                    write_json(self.run_dir / "best_metrics.json", metrics)
                    self._save_previews(previews, classes)
                # Only now does the state record the epoch as done: a Ctrl-C while the files above were
                # written saves a state that validates this epoch again on --resume, rather than one
                # whose best_miou belongs to a checkpoint that was never written.
                state.history.append(row)
                if improved:
                    best_metrics = metrics
                    state.best_miou, state.best_epoch, state.stale = metrics["miou"], epoch + 1, 0
                else:
                    state.stale += 1
                state.epoch, state.step_in_epoch, state.loss_sum, state.loss_count = epoch + 1, 0, 0.0, 0
                if self.is_main:
                    save_state(self.run_dir / "last", raw_model, optimizer, state)
                    self._write_history(state.history)
                self.log(f"{label}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
                         f"val mIoU {metrics['miou']:.4f}{' (best)' if improved else ''}, "
                         f"{rate:.1f} img/s, {state.elapsed:.0f}s")
                if out_of_time:
                    stop_reason = "time budget spent"
                    break
                if cfg.patience and state.stale >= cfg.patience:
                    stop_reason = f"early stop: no better val mIoU in {cfg.patience} epochs"
                    break
        except KeyboardInterrupt:
            state.elapsed = time.monotonic() - started
            if self.is_main:
                save_state(self.run_dir / "last", raw_model, optimizer, state)
            self.log(f"interrupted: training state saved in {self.run_dir / 'last'}; "
                     f"continue with: pixelwise train --out {self.run_dir} --resume")
            stop_reason = "interrupted"

        if not best_metrics and (self.run_dir / "best_metrics.json").is_file():
            # A resumed run that did not improve: the best is the earlier session's. (Had this session
            # improved, rank 0 might still be writing the file while another process read it.)
            best_metrics = json.loads((self.run_dir / "best_metrics.json").read_text())
        return TrainResult(self.run_dir, best_path, best_metrics, state.epoch, stop_reason, state.history,
                           is_main=self.is_main)

    def _sync_buffers(self, model: torch.nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm statistics) before validation.

        DDP copies them from rank 0 at the start of each training forward, but each process then
        updates its own from its own batch; after the last step they differ, and the processes would
        score slightly different models instead of the one rank 0 saves.
        """
        if self.accelerator.num_processes > 1:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer.data, src=0)

    # ------------------------------------------------------------------------------- outputs
    def _collect_previews(self, batch: dict, predictions: torch.Tensor, loader: DataLoader,
                          previews: list) -> None:
        if not self.is_main or len(previews) >= self.config.num_preview:
            return
        dataset: SegmentationDataset = loader.dataset.dataset  # the Subset's dataset
        for k in range(len(batch["index"])):
            if len(previews) >= self.config.num_preview:
                return
            subset_index = int(batch["index"][k])
            mh, mw = (int(s) for s in batch["mask_size"][k])
            image = read_image(dataset.samples[subset_index].image)
            previews.append((image, batch["mask"][k, :mh, :mw].numpy(), predictions[k, :mh, :mw].numpy()))

    def _save_previews(self, previews: list, classes: Any) -> None:
        if previews:
            from pixelwise.core.viz import save_grid

            save_grid(previews, classes.palette, classes.names, self.run_dir / "predictions.png",
                      title="validation: image | truth | prediction (best epoch)")

    def _write_history(self, history: list[dict[str, Any]]) -> None:
        path = self.run_dir / "metrics.csv"
        tmp = path.with_name("metrics.csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        os.replace(tmp, path)
        from pixelwise.core.viz import plot_curves

        plot_curves(history, self.run_dir / "curves.png")


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def train(config: TrainConfig, resume: bool = False) -> TrainResult:
    """Train as the recipe says; returns where the run is and its best validation metrics."""
    return Trainer(config, resume).fit()


