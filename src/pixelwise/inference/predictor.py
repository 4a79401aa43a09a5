"""Prediction with a trained model: arrays, files, folders and globs.

Images are resized to the model's training size (stored in the checkpoint), and the logits are
resized back, so labels always come out at the input image's own size. With ``tile=(h, w)`` images are
not resized: they are predicted at their native resolution by overlapping tiles blended with Gaussian
weights (:mod:`pixelwise.inference.tiling`), in memory bounded by a row of tiles, not by the image.
Flip and multi-scale test-time augmentation (``tta_flip``, ``tta_scales``) work with either, and so does
a list of checkpoints: an ensemble whose logits are averaged (:mod:`pixelwise.models.ensemble`).

>>> import numpy as np, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> model.meta = CheckpointMeta.for_model(model, get_preset("binary"), input_size=(32, 32))
>>> Predictor(model, precision="fp32").predict(np.zeros((50, 70, 3), np.uint8)).shape
(50, 70)
>>> Predictor(model, precision="fp32", tile=(32, 32), tta_flip=True).predict(np.zeros((50, 70, 3), np.uint8)).shape
(50, 70)
"""

from __future__ import annotations

import glob
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from pixelwise.core.device import resolve_workers, torch_threads
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.core.uncertainty import uncertainty_map
from pixelwise.data.io import IMAGE_EXTENSIONS, read_image
from pixelwise.data.transforms import normalize, resize_image
from pixelwise.inference.backends import open_backend
from pixelwise.inference.outputs import DEFAULT_OUTPUTS, OUTPUTS, OutputWriter, Prediction, output_paths, parse_outputs
from pixelwise.inference.pipeline import ImageFiles, collate_images, file_batches, worker_context
from pixelwise.inference.tiling import check_tiling, predict_tiled, predict_tiled_probs
from pixelwise.models.base import logits_at_size
from pixelwise.models.checkpoint import CheckpointMeta
from pixelwise.models.ensemble import Checkpoints
from pixelwise.models.tta import prediction_scales, with_tta


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns to a list of image files."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif path.is_file():
            files.append(path)
        elif any(c in str(item) for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=True) if Path(p).is_file())
            if not matches:
                raise DataError(f"{item}: pattern matches no files")
            files += matches
        else:
            raise DataError(f"{item}: no such file or folder")
    return list(dict.fromkeys(files))  # a file named twice (e.g. by a path and a glob) is predicted once


class Predictor:
    """Labels for images from a checkpoint path, a list of them (an ensemble), or a model carrying ``.meta``.

    ``tile=(h, w)``: sliding-window prediction at native resolution, tiles overlapping by ``overlap``
    (``input_size`` is then unused); ``"train"`` (the default): the checkpoint's own tile, set when it was
    trained on crops at native resolution (else no tiling); ``None``: never tile. ``tta_flip`` adds
    horizontally flipped inputs, ``tta_scales`` resized
    ones (e.g. ``(0.75, 1, 1.25)``); their logits are averaged.
    """

    def __init__(self, model: Checkpoints | nn.Module, device: str = "auto", precision: str = "auto",
                 input_size: tuple[int, int] | None | str = "train", tile: tuple[int, int] | None | str = "train",
                 overlap: float = 0.25, tta_flip: bool = False, tta_scales: Sequence[float] = (1.0,),
                 backend: str = "auto", compile: bool = False, num_images: int | None = None) -> None:
        # Options first: a bad value is reported before a checkpoint is read.
        self.tile = check_tiling(tile, overlap) if tile not in (None, "train") else None
        self.overlap = overlap
        with_tta(self._logits, tta_flip, tta_scales)  # checks the scales before a checkpoint is read
        # ``model`` may be a checkpoint, a list of checkpoints, a model with .meta, an .onnx or an OpenVINO .xml
        # file; the backend (PyTorch, onnxruntime, OpenVINO) is chosen by the auto rule of inference/backends/choose.py.
        self.backend = open_backend(model, backend, device, precision, compile, num_images)
        self.meta: CheckpointMeta = self.backend.meta
        self.device = getattr(self.backend, "device", torch.device("cpu"))
        self.input_size = self.meta.input_size if input_size == "train" else input_size
        self._forward = with_tta(self._logits, tta_flip, prediction_scales(self.meta.predict_scale, tta_scales))
        if tile == "train" and self.meta.tile is not None:
            self.tile = check_tiling(self.meta.tile, overlap)
        # Around an exported runtime (its own thread pool on the CPU) torch's own work (normalising, resizing
        # logits, class ids) runs on one thread: with more, the two pools spin-wait for each other's cores.
        exported = self.backend.export_format is not None and self.device.type == "cpu"
        self._torch_threads = 1 if exported else None

    @property
    def classes(self):
        return self.meta.classes

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        """float32 logits for a normalised batch: one forward pass (TTA wraps this)."""
        return self.backend(images)

    def _tile_logits(self, tiles: torch.Tensor) -> torch.Tensor:
        """Logits for a uint8 batch of tiles: normalised per batch, so the image is never copied as floats."""
        return self._forward(normalize(tiles.to(self.device), self.meta.mean, self.meta.std))

    def _normalised(self, batch: dict) -> torch.Tensor:
        """A collated batch's uint8 images as the model's float input, on its device."""
        return normalize(batch["image"].to(self.device), self.meta.mean, self.meta.std)

    def _with_input(self, batch: dict) -> dict:
        """``batch`` with its model input added (the pipeline's decoding threads call this)."""
        with torch_threads(self._torch_threads):
            return {**batch, "input": self._normalised(batch)}

    @torch.no_grad()
    def _labels(self, batch: dict, return_probs: bool = False) -> list:
        """Per image of a collated batch: its class ids, or ``(ids, probs)`` with ``return_probs``."""
        with torch_threads(self._torch_threads):
            logits = self._forward(self._normalised(batch))
        return self._labels_from(batch, logits, return_probs)

    @torch.no_grad()
    def _labels_from(self, batch: dict, logits: torch.Tensor, return_probs: bool) -> list:
        """Per image of a collated batch, from the batch's logits: ids at the image's own size (or ``(ids, probs)``)."""
        labels = []
        with torch_threads(self._torch_threads):
            for k in range(logits.shape[0]):
                item = logits_at_size(logits[k], batch["image_size"][k], batch["out_size"][k])
                ids = class_ids(item).cpu().numpy()
                labels.append((ids, torch.softmax(item.float(), 0).cpu().numpy()) if return_probs else ids)
        return labels

    @torch.no_grad()
    def _tiled(self, image: np.ndarray | torch.Tensor, batch_size: int, return_probs: bool = False):
        return self.predict_tiled(image, self.tile, batch_size, return_probs)

    @torch.no_grad()
    def predict_tiled(self, image: np.ndarray | torch.Tensor, tile: tuple[int, int], batch_size: int = 4,
                      return_probs: bool = False):
        """``image`` predicted by overlapping ``tile`` = (h, w) tiles at its own size, whatever this predictor's
        own ``tile``; class ids, or ``(ids, probs)`` with ``return_probs`` (see :meth:`predict`)."""
        with torch_threads(self._torch_threads):
            if return_probs:
                return predict_tiled_probs(self._tile_logits, image, tile, self.overlap, batch_size)
            return predict_tiled(self._tile_logits, image, tile, self.overlap, batch_size)

    def predict(self, image: np.ndarray | str | Path, batch_size: int = 4, return_probs: bool = False):
        """``(H, W)`` class ids for one RGB uint8 image (or an image file); ``batch_size`` tiles per pass.

        ``return_probs``: ``(ids, probs)``, ``probs`` the ``(classes, H, W)`` float32 softmax at the image's size
        (the ids are its argmax, the very ids returned without it).
        """
        if not isinstance(image, np.ndarray):
            image = read_image(image)
        if self.tile is not None:
            return self._tiled(check_rgb(image), batch_size, return_probs)
        return self.predict_batch([image], return_probs)[0]

    def predict_batch(self, images: Sequence[np.ndarray], return_probs: bool = False) -> list:
        """:meth:`predict` for several RGB uint8 arrays in one forward pass (never tiled).

        Images whose resized sizes differ are zero-padded to the largest, as in :meth:`predict_files`. Images of
        one size (any size, with an ``input_size``) get the ids each gets alone, unless a runtime sums in another
        order for a larger batch (on the development CPU every backend gave identical ids, batch 8 vs 1).
        """
        items = []
        with torch_threads(self._torch_threads):  # the collation's copies too
            for index, image in enumerate(images):
                resized = resize_image(check_rgb(image), self.input_size)
                items.append({"image": torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))),
                              "out_size": torch.tensor(image.shape[:2]), "index": index})
            return self._labels(collate_images(items), return_probs)

    def predict_files(self, paths: Sequence[Path], batch_size: int = 4, workers: int | None = None,
                      return_probs: bool = False, pipelined: bool = True) -> Iterator[tuple[Path, np.ndarray]]:
        """``(path, labels)`` for each file, in order, decoded in the background (``(path, (labels, probs))``
        with ``return_probs``).

        ``batch_size`` counts images, or tiles when tiling: then images come one at a time, at full size.
        ``workers`` decoding processes; ``None`` lets :func:`resolve_workers` pick (none on a 2-core CPU, where
        decoding runs in threads instead). ``pipelined`` (the default): the model runs the next
        batch while this one's labels are made (see :mod:`pixelwise.inference.pipeline`), where the backend can
        (OpenVINO); ``False``, another backend, or a job of one batch: decode, model and labels one after another,
        batch by batch. Both give the same labels.
        """
        workers = resolve_workers(workers, self.device)
        if self.tile is not None:
            # batch_size=None: no collation, the workers hand over one decoded image at a time.
            loader = DataLoader(ImageFiles(paths, None), batch_size=None, num_workers=workers,
                                multiprocessing_context=worker_context(workers))
            for item in loader:
                yield paths[item["index"]], self._tiled(item["image"], batch_size, return_probs)
            return
        dataset = ImageFiles(paths, self.input_size)
        # Pipelined only where the backend runs the model asynchronously. Beside PyTorch's own threads, decoding
        # threads cost more than they hide: 0.80x on a quiet 2-core CPU (CamVid U-Net, bf16, 48 images). And a job
        # of one batch has nothing to overlap, and is timed by its latency.
        if not pipelined or not self.backend.overlaps or len(paths) <= batch_size:
            loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_images,
                                multiprocessing_context=worker_context(workers))
            for batch in loader:
                yield from self._with_paths(paths, batch, self._labels(batch, return_probs))
            return
        batches = file_batches(dataset, batch_size, workers, prepare=self._with_input)
        for batch, labels in self._pipelined_labels(batches, return_probs):
            yield from self._with_paths(paths, batch, labels)

    @staticmethod
    def _with_paths(paths: Sequence[Path], batch: dict, labels: list) -> Iterator[tuple[Path, np.ndarray]]:
        return zip([paths[i] for i in batch["index"].tolist()], labels, strict=True)

    def _pipelined_labels(self, batches: Iterator[dict], return_probs: bool) -> Iterator[tuple[dict, list]]:
        """``(batch, labels)`` for each batch, the backend running the next batches meanwhile (without TTA,
        whose several passes per batch run one after another)."""
        if self._forward != self._logits:  # TTA (`!=`: each `self._logits` is a new bound-method object)
            for batch in batches:
                yield batch, self._labels_from(batch, self._forward(batch["input"]), return_probs)
            return
        started: deque[dict] = deque()  # the batches handed to the backend, whose logits are still to come
        failed: list[Exception] = []

        def inputs() -> Iterator[torch.Tensor]:
            try:
                for batch in batches:
                    started.append(batch)
                    yield batch["input"]
            except Exception as error:  # a bad image: the batches before it still get their labels first
                failed.append(error)

        for logits in self.backend.run_batches(inputs()):
            batch = started.popleft()
            yield batch, self._labels_from(batch, logits, return_probs)
        if failed:
            raise failed[0]


def class_ids(logits: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` index of the largest of ``(C, H, W)`` logits, the first one on a tie (as ``max(0).indices``);
    uint8 up to 255 classes, else int32.

    ``max(0).indices`` walks the classes pixel by pixel (argmax(0) is ~9x slower still); this takes the maximum
    (vectorised), marks where each class reaches it, and keeps the first class marked: the marks weighted
    C, C-1, ..., 1 from class 0 on, their maximum is C - id. Measured 0.4x the time of ``max(0).indices``
    for 11 classes at 360x480 on one core (1.9 vs 4.8 ms).

    >>> class_ids(torch.tensor([[[1.0, 5.0]], [[3.0, 5.0]]])).tolist()
    [[1, 0]]
    """
    classes = logits.shape[0]
    if classes > 255:
        return logits.max(0).indices.to(torch.int32)
    weights = torch.arange(classes, 0, -1, dtype=torch.uint8, device=logits.device).view(-1, 1, 1)
    marks = torch.ge(logits, logits.amax(0)).view(torch.uint8).mul_(weights)  # bool as 0/1 bytes, weighted in place
    ids = classes - marks.amax(0)
    return ids.clamp_(max=classes - 1)  # a NaN logit marks no class (C - 0): the last class, not an unknown id


def check_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` when it is an (H, W, 3) uint8 RGB array, else a DataError saying what it is."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"predict needs an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
    return image


def predict_to_folder(model: Checkpoints | nn.Module, inputs: Sequence[str | Path], out_dir: str | Path,
                      batch_size: int = 4, workers: int | None = None, overwrite: bool = False, device: str = "auto",
                      precision: str = "auto", progress: bool = True, tile: tuple[int, int] | None | str = "train",
                      overlap: float = 0.25, tta_flip: bool = False, tta_scales: Sequence[float] = (1.0,),
                      backend: str = "auto", compile: bool = False, log: Callable[[str], None] | None = None,
                      save_probs: bool = False, save_uncertainty: str | None = None,
                      outputs: str | Sequence[str] = DEFAULT_OUTPUTS) -> list[dict[str, Path]]:
    """Predict every input and write its ``outputs`` (default: ``_labels.png`` and ``_overlay.png``, see
    :mod:`pixelwise.inference.outputs`); refuses to overwrite unless asked. Returns each input's files by kind.

    ``tile``, ``overlap``, ``tta_flip``, ``tta_scales``, ``backend`` and ``compile`` are the
    :class:`Predictor`'s options. ``save_probs`` adds the ``probs`` output, ``save_uncertainty`` (``"entropy"``
    or ``"margin"``) the ``uncertainty`` output measured so (``entropy`` when ``outputs`` names it alone).
    """
    kinds = parse_outputs([*parse_outputs(outputs), *["probs"] * save_probs, *["uncertainty"] * bool(save_uncertainty)])
    if tile not in (None, "train"):
        check_tiling(tile, overlap)  # before anything is read or written
    uncertainty = save_uncertainty or "entropy"
    if "uncertainty" in kinds:
        uncertainty_map(torch.zeros(1, 1, 1), uncertainty)  # an unknown kind is refused before any work
    files = expand_inputs(inputs)
    out_dir = Path(out_dir)
    targets = output_paths(out_dir, files, kinds)
    if not overwrite:
        existing = [p for t in targets for p in t.values() if p.exists()]
        if existing:
            raise ConfigError(f"{existing[0]}: already exists ({len(existing)} files would be overwritten); "
                              "choose another --out or pass --overwrite")
    predictor = Predictor(model, device, precision, tile=tile, overlap=overlap, tta_flip=tta_flip,
                          tta_scales=tta_scales, backend=backend, compile=compile, num_images=len(files))
    if log is not None:
        log(f"backend: {predictor.backend.name} ({getattr(predictor.backend, 'precision', 'fp32')})")
        if "ensemble" in predictor.meta.extra:  # also for an exported ensemble, whose metadata lists its members
            members = predictor.meta.extra["ensemble"]
            log(f"ensemble of {len(members)} checkpoints, logits averaged: {', '.join(members)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    classes, order = predictor.classes, {p: i for i, p in enumerate(files)}
    needs_probs = any(OUTPUTS.get(kind).needs_probs for kind in kinds)
    from tqdm.auto import tqdm  # here: only a folder's prediction shows a bar

    # disable=None: bars on a terminal, none in logs and CI output
    with tqdm(total=len(files), desc="predict", disable=None if progress else True, dynamic_ncols=True) as bar, \
            OutputWriter() as writer:
        for path, result in predictor.predict_files(files, batch_size, workers, return_probs=needs_probs):
            labels, probs = result if needs_probs else (result, None)
            writer.submit(Prediction(path, labels, probs, classes.palette, classes.names, uncertainty),
                          targets[order[path]])
            bar.update()
    return targets
