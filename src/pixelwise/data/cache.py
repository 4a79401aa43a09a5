"""A decode-once cache: samples decoded and resized one time into a memory-mapped uint8 file.

Decoding PNG/JPEG every epoch is the CPU's bottleneck on small models. The cache stores each sample's
image (resized to the training size) and mask (resized too for training, full size for evaluation)
in one flat ``uint8`` file that every DataLoader worker maps read-only; later epochs copy bytes
instead of decoding. Its key hashes the file list, sizes and modification times, the format and
classes, and the preprocessing parameters, so a changed file or option builds a new cache and the
stale one is removed.

>>> from pixelwise.data.synthetic import write_dataset
>>> from pixelwise.data.formats import open_dataset
>>> import tempfile
>>> index = open_dataset(write_dataset(tempfile.mkdtemp(), n_train=2, n_val=1, height=16, width=20))
>>> cache = build_cache(index.split("train"), index.reader, (16, 16), True, tempfile.mkdtemp(), progress=False)
>>> cache.load(index.split("train")[1])[0].shape
(16, 16, 3)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pixelwise.core.files import staged_folder
from pixelwise.data.sample import Sample, SampleReader

FORMAT_VERSION = 1
# A stale cache opened this recently may still be read by another run (two experiments on the same
# data with other sizes), so it is left alone; an older one is removed when its replacement is built.
IN_USE_SECONDS = 6 * 3600


def cache_dir() -> Path:
    """Where pixelwise keeps generated data: ``$PIXELWISE_CACHE`` or ``~/.cache/pixelwise``."""
    return Path(os.environ.get("PIXELWISE_CACHE", Path.home() / ".cache" / "pixelwise"))


def cache_key(samples: Sequence[Sample], reader: SampleReader, size: tuple[int, int] | None, resize_mask: bool) -> str:
    """A digest of everything the cached bytes depend on."""
    files = []
    for sample in samples:
        for path in (sample.image, sample.mask):
            if path is not None:
                stat = os.stat(path)
                files.append((str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns))
    params = {"v": FORMAT_VERSION, "reader": type(reader).__name__, "classes": reader.classes.model_dump(),
              "size": size, "resize_mask": resize_mask, "options": _reader_options(reader)}
    text = json.dumps({"files": files, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _reader_options(reader: SampleReader) -> dict:
    """Settings of a reader that change what it decodes (lookup tables, tolerance, order...)."""
    options = {}
    for name, value in vars(reader).items():
        if name in ("classes", "lut", "decoder"):
            continue
        options[name] = hashlib.sha256(value.tobytes()).hexdigest() if isinstance(value, np.ndarray) else repr(value)
    decoder = getattr(reader, "decoder", None)
    if decoder is not None:
        options["tolerance"] = decoder.tolerance
    return options


class SampleCache:
    """Read-only view of a built cache; ``load(sample)`` returns ``(image, class ids)`` like a reader."""

    def __init__(self, folder: Path, samples: Sequence[Sample]) -> None:
        self.folder = folder
        self.index = {sample: i for i, sample in enumerate(samples)}
        self.table = np.load(folder / "table.npy")  # per sample: offset, image h, w, mask h, w
        os.utime(folder / "table.npy")  # marks the cache as in use; see IN_USE_SECONDS
        self._data: np.memmap | None = None

    @property
    def data(self) -> np.memmap:
        # Mapped lazily, so each DataLoader worker opens its own map after the fork.
        if self._data is None:
            self._data = np.memmap(self.folder / "data.u8", dtype=np.uint8, mode="r")
        return self._data

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        offset, ih, iw, mh, mw = (int(v) for v in self.table[self.index[sample]])
        image = np.array(self.data[offset : offset + ih * iw * 3]).reshape(ih, iw, 3)
        start = offset + ih * iw * 3
        mask = np.array(self.data[start : start + mh * mw]).reshape(mh, mw)
        return image, mask


def build_cache(samples: Sequence[Sample], reader: SampleReader, size: tuple[int, int] | None, resize_mask: bool,
                root: str | Path, workers: int = 4, progress: bool = True) -> SampleCache:
    """The cache for these samples and settings, built now unless a valid one exists under ``root``."""
    from tqdm.auto import tqdm

    key = cache_key(samples, reader, size, resize_mask)
    root = Path(root)
    folder = root / key
    if (folder / "table.npy").is_file():
        return SampleCache(folder, samples)
    import albumentations as A  # here: its import is slow, and prediction never builds a cache

    resize = A.Compose([A.Resize(*size, interpolation=cv2.INTER_LINEAR)]) if size else None

    def prepare(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        image, mask = reader.load(sample)
        if resize is not None:  # the same operation the transforms would apply first: identical pixels
            if resize_mask:
                out = resize(image=image, mask=mask)
                return out["image"], out["mask"]
            return resize(image=image)["image"], mask
        return image, mask

    # A private temporary folder per build: two runs starting at once build side by side, and the
    # first to finish publishes its folder with an atomic rename.
    table = np.zeros((len(samples), 5), np.int64)
    offset = 0
    try:
        with staged_folder(folder) as tmp:
            with open(tmp / "data.u8", "wb") as f, ThreadPoolExecutor(max(1, workers)) as pool:
                bar = tqdm(total=len(samples), desc="caching", disable=None if progress else True, leave=False)
                for i, (image, mask) in enumerate(pool.map(prepare, samples)):
                    f.write(np.ascontiguousarray(image).tobytes())
                    f.write(np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
                    table[i] = (offset, *image.shape[:2], *mask.shape)
                    offset += image.size + mask.size
                    bar.update()
                bar.close()
            np.save(tmp / "table.npy", table)
            # Caches of the same samples with other files or settings are stale now.
            for old in root.glob("*/owner.json"):
                if old.parent != folder and old.read_text() == _owner(samples, size, resize_mask) and not _in_use(old):
                    shutil.rmtree(old.parent, ignore_errors=True)
            (tmp / "owner.json").write_text(_owner(samples, size, resize_mask))
    except OSError:  # another run published the same cache first: use theirs
        if not (folder / "table.npy").is_file():
            raise
    return SampleCache(folder, samples)


def _in_use(owner_file: Path) -> bool:
    table = owner_file.parent / "table.npy"
    return table.is_file() and time.time() - table.stat().st_mtime < IN_USE_SECONDS


def _owner(samples: Sequence[Sample], size: tuple[int, int] | None, resize_mask: bool) -> str:
    """Which dataset split and settings a cache belongs to (independent of file contents)."""
    first = str(Path(samples[0].image).resolve().parent) if samples else ""
    return json.dumps({"first": first, "n": len(samples), "size": size, "resize_mask": resize_mask})


def estimated_bytes(samples: Sequence[Sample], reader: SampleReader, size: tuple[int, int] | None,
                    resize_mask: bool) -> int:
    """Cache size from the first image's header: 4 bytes per pixel (RGB + mask)."""
    if not samples:
        return 0
    h, w = reader.image_size(samples[0])
    ih, iw = size or (h, w)
    mh, mw = (ih, iw) if resize_mask else (h, w)
    return len(samples) * (ih * iw * 3 + mh * mw)
