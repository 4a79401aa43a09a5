"""The training recipe: one validated object, from YAML and/or command-line flags.

Unknown keys and bad values are errors with one line naming the key.

>>> cfg = TrainConfig(data="data/camvid", img_size="352x480", time_budget="30m")
>>> cfg.img_size, cfg.time_budget_seconds
((352, 480), 1800.0)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from pixelwise.core.errors import ConfigError
from pixelwise.core.yamlfile import read_yaml
from pixelwise.data.transforms import AugmentOptions


def parse_size(value: Any) -> tuple[int, int] | None:
    """``"352x480"``, ``[352, 480]`` or ``256`` (square) to ``(height, width)``; ``"none"``: ``None``."""
    if value is None or isinstance(value, tuple) and len(value) == 2:
        return value
    if isinstance(value, str) and value.strip().lower() in ("none", "native"):
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list) and len(value) == 2:
        try:
            return (int(value[0]), int(value[1]))
        except (TypeError, ValueError):  # [null, 3] in a recipe: a ValueError is what pydantic reports
            raise ValueError(f"'{value}' is not a size; write HxW, e.g. 256x256") from None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
    if not match:
        raise ValueError(f"'{value}' is not a size; write HxW, e.g. 256x256")
    return (int(match[1]), int(match[2]))


def checked_size(value: Any) -> tuple[int, int] | None:
    """:func:`parse_size`, with both sides at least 1 pixel."""
    size = parse_size(value)
    if size is not None and min(size) < 1:
        raise ValueError(f"{value} is not a size; both sides must be at least 1 pixel")
    return size


def parse_duration(value: str | float | int | None) -> float | None:
    """``"30m"``, ``"1h30m"``, ``"90s"``, ``"2h"`` or a number of seconds, to seconds."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", value)
    if not parts or not any(parts.groups()):
        raise ValueError(f"'{value}' is not a duration; write e.g. 90s, 30m, 1h30m")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


def seconds_text(seconds: float) -> str:
    """A duration in seconds as a recipe writes it: ``seconds_text(720.0)`` is ``'720s'``."""
    return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"


def parse_save_every(value: str) -> tuple[float | None, int | None]:
    """``(seconds, steps)`` of a ``save_every`` value; at most one is set. Raises ValueError for bad text."""
    text = value.strip().lower()
    if text in ("epoch", "none", "never"):
        return None, None
    steps = re.fullmatch(r"(\d+)\s*steps?", text)
    if steps:
        if int(steps[1]) < 1:
            raise ValueError(f"'{value}': save at least every 1 step")
        return None, int(steps[1])
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise ValueError(f"'{value}' is not a save interval; write e.g. 10m, 90s or 500 steps")
    return seconds, None


class FinalStage(BaseModel):
    """The last share of a run, trained at another size from the best weights of the run before it.

    Whole frames shrunk for speed train many epochs; a short stage on frames at (or near) their own size then
    teaches the model their sharp look. On CamVid (240x320, then 360x480 in batches of 4 at half the lr) it
    scored 74.6% val mIoU with pole IoU 25.7 against 74.1 and 20.1 (README "CamVid"). See training/stages.py.

    >>> FinalStage(img_size="360x480", batch_size=4).img_size
    (360, 480)
    """

    model_config = ConfigDict(extra="forbid")

    img_size: tuple[int, int]  # (height, width) of the images in this stage
    share: float = Field(0.25, gt=0, lt=1)  # of the time budget (or of the epochs)
    # Larger frames per step miss the CPU's caches: a batch of 8 native CamVid frames trained 4.3 images/s
    # against 6.4 in batches of 4 (2-core EPYC). None: the recipe's batch size.
    batch_size: int | None = Field(None, ge=1)
    lr_scale: float = Field(0.5, gt=0)  # the stage's peak lr is the recipe's lr times this: it refines

    @field_validator("img_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int]:
        size = checked_size(v)
        if size is None:
            raise ValueError("the final stage needs a size HxW, e.g. 360x480")
        return size


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # data
    data: str | None = None
    format: str = "auto"
    classes: str | None = None  # preset name or classes.yaml path; default: classes.yaml beside the data
    train_split: str = "train"
    val_split: str = "val"
    img_size: tuple[int, int] | None = (256, 256)  # (height, width) images are resized to; None: their own
    # Train on random crops of this size (from images at img_size, or at their own size when img_size is None)
    # rather than whole images: large images keep their detail. With img_size None, checkpoints then
    # predict large images by overlapping tiles of this size.
    crop_size: tuple[int, int] | None = None
    # The checkpoint predicts an image resized to img_size and then enlarged this much (predict, evaluate, serve).
    # A model trained on whole frames shrunk for speed still sees the frame's context, and its scale augmentation
    # showed it frames enlarged (up to augment.scale's top) through that shrink's softness. Enlarging the frame
    # the same way at prediction gives thin things (poles, signs) more pixels: CamVid at 240x320 with 1.5 scored
    # 74.1% val mIoU against 72.9%, pole IoU 20.1 against 12.7; the sharp native 360x480 frame scored 73.3 and
    # 16.1 (README "CamVid"). Validation during training stays at 1 (cheaper; it only ranks the epochs).
    predict_scale: float = Field(1.0, gt=0)
    augment: AugmentOptions = Field(default_factory=AugmentOptions)
    workers: int | None = Field(None, ge=0)  # None or "auto": resolve_workers picks (0 on 2 cores)
    cache: bool = True  # decode + resize every sample once into a memory-mapped file (see data/cache.py)
    cache_max_gb: float = Field(8.0, gt=0)  # a larger dataset is read from its files every epoch

    # model
    model: str = "unet"
    encoder: str | None = None
    encoder_weights: str | None = None  # none | PATH | imagenet
    model_kwargs: dict[str, Any] = Field(default_factory=dict)  # e.g. {base_filters: 32, depth: 4}
    # Start from the weights of a pixelwise checkpoint of the same model and classes: e.g. a short fine-tune at
    # full resolution of a run trained longer at a lower one (the schedule and optimizer start afresh).
    init_from: str | None = None
    # Fine-tuning a pretrained encoder (see training/finetune.py): its learning rate is lr times this,
    # and it is frozen (decoder only) for the first this-many epochs.
    encoder_lr_mult: float = Field(1.0, gt=0)
    freeze_encoder_epochs: int = Field(0, ge=0)

    # optimisation
    loss: str = "ce"
    # A weight per class for the CE loss, or computed from the training masks: "auto"/"median"
    # (median-frequency balancing, as SegNet) or "inverse" (inverse frequency).
    class_weights: list[float] | Literal["auto", "median", "inverse"] | None = None
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Literal["poly", "cosine", "onecycle", "constant"] = "poly"
    warmup: float = Field(0.02, ge=0, lt=1)  # fraction of training spent warming up the learning rate
    grad_clip: float | None = Field(1.0, gt=0)
    ema: float | None = Field(None, gt=0, lt=1)  # validate and save an EMA of the weights, this decay per step
    batch_size: int = Field(8, ge=1)
    epochs: int | None = Field(None, ge=1)
    time_budget: str | None = None  # e.g. 30m; training stops (and evaluates) when it is spent
    # Train the last share of the budget at another size (see FinalStage): RUN/stage_1 holds the first stage.
    final_stage: FinalStage | None = None
    patience: int | None = Field(None, ge=1)  # early stopping: epochs without a better val score
    # The class whose val IoU picks the best checkpoint (binary foreground problems); None: the mIoU.
    score_class: str | None = None

    # k-fold cross-validation (see training/folds.py). ``folds`` alone: `pixelwise train` trains every fold,
    # one run each, and scores them out of fold. With ``fold`` too, this run is that one fold: it trains on
    # the other folds of train_split and validates on fold ``fold`` (val_split is left unseen).
    # The final model, once a run validated on val_split fixed the recipe: train on train_split + val_split (as
    # CamVid papers do), keep the last epoch. Its val scores measure nothing (it trained on those images).
    final_fit: bool = False

    folds: int | None = Field(None, ge=2)
    fold: int | None = Field(None, ge=0)  # 0 .. folds-1

    # run
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    device: str = "auto"
    channels_last: bool | None = None  # None: on whenever bf16/fp16 autocast is on
    compile: bool = False  # torch.compile the training forward (falls back to eager with a warning)
    seed: int = 0
    out: str | None = None
    # A state in last/ at each epoch's end and, inside epochs, this often: "10m", "500 steps" or "epoch"
    # (see training/save_schedule.py); a SIGKILL loses at most this much training.
    save_every: str = "10m"
    # A batch whose loss or gradient is NaN/inf is skipped (weights untouched, its files logged); more
    # than this many skips in a run stop it with a message naming the files.
    max_bad_batches: int = Field(10, ge=0)
    num_preview: int = Field(4, ge=0)  # validation images in the prediction grid
    progress: bool = True

    @field_validator("img_size", "crop_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int] | None:
        return checked_size(v)

    @field_validator("time_budget", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str | None:
        if v is not None:
            parse_duration(str(v))
            return str(v)
        return None

    @field_validator("save_every", mode="before")
    @classmethod
    def _save_every(cls, v: Any) -> str:
        text = f"{v} steps" if isinstance(v, int) and not isinstance(v, bool) else str(v)
        parse_save_every(text)
        return text

    @field_validator("fold")
    @classmethod
    def _fold_in_range(cls, v: int | None, info: ValidationInfo) -> int | None:
        folds = info.data.get("folds")  # declared before fold, so already validated
        if v is not None and (folds is None or v >= folds):
            raise ValueError(f"fold {v} needs folds greater than it (folds: {folds}); folds are numbered "
                             "0..folds-1")
        return v

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> Any:
        return None if v == "auto" else v  # "auto" (as in a recipe) = the default: resolve_workers picks

    @model_validator(mode="after")
    def _final_fit_alone(self) -> TrainConfig:
        if self.final_fit and self.folds is not None:
            raise ValueError("final_fit trains on every image, which leaves no fold to hold out; use one or "
                             "the other")
        return self

    @model_validator(mode="after")
    def _stages_alone(self) -> TrainConfig:
        if self.final_stage is not None and self.folds is not None:
            raise ValueError("final_stage trains a run in two stages, and folds one run per fold; cross-validate "
                             "without final_stage")
        if self.final_stage is not None and self.epochs == 1:
            raise ValueError("final_stage needs 2 epochs at least, one for each stage")
        return self

    @model_validator(mode="after")
    def _default_epochs(self) -> TrainConfig:
        if self.epochs is None and self.time_budget is None:
            object.__setattr__(self, "epochs", 30)
        return self

    @property
    def time_budget_seconds(self) -> float | None:
        return parse_duration(self.time_budget)


def describe_error(error: ValidationError, source: str = "") -> str:
    """One line for the first problem of a pydantic error."""
    err = error.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "value"
    if not key.isprintable():  # a key holding a newline or tab must not break the one-line message
        key = repr(key)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown option (check the spelling; see `pixelwise train --help`)"
    where = f"{source}: " if source else ""
    return f"{where}{key}: {msg}"


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A recipe from ``path`` (YAML) with ``overrides`` (flags; ``None`` means "not given") on top."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        loaded = read_yaml(path, ConfigError, "recipe file not found")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of option: value")
        data = loaded or {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe_error(e, str(path) if path else "")) from None
