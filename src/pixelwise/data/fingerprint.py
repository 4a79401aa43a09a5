"""A dataset's fingerprint: the measurements a training recipe depends on (nnU-Net's idea, for 2D images).

What is measured, on the training split:

* sizes: every image's height and width (from the file headers, cheap), their median and aspect ratio;
* colour: whether the images are grey (all channels equal) or colour, per-channel mean and std (0..1);
* classes: each class's share of the labelled pixels, the fraction of images it appears in, and the
  size of its objects: their *thickness* measured along their medial lines (a 3-pixel-wide pole is 3 px
  thick whatever its length, a disc its diameter, a network of thin membranes thin although it is one
  region; see :func:`medial_thickness`), 5th percentile and median, each medial pixel weighted by its
  thickness (the area it stands for, so the specks of label noise along every edge weigh little);
  and the median area of its connected regions, counted per pixel (half of the class's pixels lie in
  regions at most this large). All at the images' own resolution;
* the ignored share of the pixels, and how many images there are.

Pixel statistics come from an evenly spread sample of at most ``max_images`` images, so a fingerprint of
a large dataset takes seconds. Nothing here knows any dataset's name: a planner reads only these numbers.

>>> import tempfile
>>> from pixelwise.data.synthetic import write_dataset
>>> root = write_dataset(tempfile.mkdtemp(), n_train=6, n_val=2, height=48, width=64)
>>> fp = fingerprint_dataset(root)
>>> fp.median_size, fp.channels, fp.num_images
((48, 64), 'rgb', 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pixelwise.core.constants import MASK_IGNORE
from pixelwise.data.formats import ClassesArg, DatasetIndex, open_dataset
from pixelwise.data.sample import Sample

# Channels whose values differ by at most this many levels everywhere are one grey channel stored three
# times (JPEG chroma noise keeps a grey photo's channels a level or two apart).
GREY_TOLERANCE = 2


@dataclass
class ClassStats:
    """One class as the training masks show it."""

    name: str
    pixel_share: float  # of all labelled (not ignored) pixels
    image_share: float  # fraction of the sampled images in which it appears
    thickness_p5: float | None  # px; 5% of its area lies in parts at most this thick (None: absent)
    thickness_median: float | None  # px
    area_median: float | None  # px; half of its pixels lie in regions of at most this area


@dataclass
class Fingerprint:
    """What :func:`fingerprint_dataset` measured; ``to_dict()`` is what a plan records."""

    num_images: int
    sampled_images: int
    median_size: tuple[int, int]  # (height, width)
    min_size: tuple[int, int]
    max_size: tuple[int, int]
    aspect: float  # median width / height
    channels: str  # "grey" or "rgb"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    ignore_share: float
    classes: list[ClassStats] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return asdict(self)

    def format_text(self) -> str:
        lines = [f"images: {self.num_images} ({self.sampled_images} sampled), median {_hw(self.median_size)}, "
                 f"aspect {self.aspect:.2f}, sizes {_hw(self.min_size)} .. {_hw(self.max_size)}",
                 f"colour: {self.channels}, mean {_fmt(self.mean)}, std {_fmt(self.std)}; "
                 f"ignored pixels {100 * self.ignore_share:.1f}%",
                 f"{'class':<16} {'pixels %':>9} {'images %':>9} {'thick p5':>9} {'thick med':>9} {'area med':>9}"]
        for c in self.classes:
            lines.append(f"{c.name[:16]:<16} {100 * c.pixel_share:>9.2f} {100 * c.image_share:>9.1f} "
                         f"{_num(c.thickness_p5):>9} {_num(c.thickness_median):>9} {_num(c.area_median):>9}")
        return "\n".join(lines)


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def distance_to_edge(ids: np.ndarray) -> np.ndarray:
    """Per pixel, the distance to the nearest region edge: 1 on a pixel with a 4-neighbour of another class
    (or on the image's border), 2 one pixel further in, and so on. One transform serves every class.

    >>> distance_to_edge(np.array([[0, 0, 0, 0, 0]] * 5)).astype(int)[2].tolist()
    [1, 2, 3, 2, 1]
    """
    padded = np.pad(ids.astype(np.int32), 1, constant_values=-1)  # the outside counts as another class
    centre = padded[1:-1, 1:-1]
    edge = ((centre != padded[:-2, 1:-1]) | (centre != padded[2:, 1:-1])
            | (centre != padded[1:-1, :-2]) | (centre != padded[1:-1, 2:]))
    # distanceTransform measures to the nearest zero pixel: edges are zeros, at distance 0, hence the + 1.
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5) + 1


def medial_thickness(ids: np.ndarray, distance: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The thickness of the structures along their medial lines: ``(class id, thickness)`` per ridge pixel.

    A ridge pixel is at least as far from an edge as its 8 neighbours: the centre line of a pole or a
    membrane, the middle of a blob. There, twice the distance to the edge, less the centre pixel counted
    twice, is the structure's width (exact for odd widths, one less for even ones). Measured along the
    medial line, a network of thin membranes is thin even though it is one connected region.

    >>> mask = np.zeros((20, 30), np.uint8)
    >>> mask[2:18, 5:8] = 1          # a pole 3 px wide
    >>> mask[5:16, 15:26] = 2        # an 11x11 block
    >>> classes, thickness = medial_thickness(mask)
    >>> float(np.median(thickness[classes == 1])), float(thickness[classes == 2].max())
    (3.0, 11.0)
    """
    distance = distance_to_edge(ids) if distance is None else distance
    ridge = distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8))
    return ids[ridge], np.round(2 * distance[ridge].astype(np.float64) - 1, 1)


def region_areas(ids: np.ndarray, class_id: int) -> np.ndarray:
    """Pixel count of every 8-connected region of ``class_id``.

    >>> region_areas(np.array([[1, 0, 1], [1, 0, 0]]), 1).tolist()
    [2, 1]
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats((ids == class_id).astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA].astype(np.int64)


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``values`` where each counts ``weights`` times.

    >>> weighted_percentile(np.array([1.0, 10.0]), np.array([1, 99]), 5)
    10.0
    """
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q / 100 * cumulative[-1])])


def evenly_spaced(samples: Sequence[Sample], count: int) -> list[Sample]:
    """At most ``count`` samples spread over the whole list (sorted datasets often group similar images)."""
    if len(samples) <= count:
        return list(samples)
    return [samples[int(i)] for i in np.linspace(0, len(samples) - 1, count)]


def _colour_stats(images: list[np.ndarray]) -> tuple[str, tuple, tuple]:
    """Grey or colour, and the per-channel mean and std over all pixels of ``images`` (0..1)."""
    count, sums, squares = 0, np.zeros(3), np.zeros(3)
    grey = True
    for image in images:
        mean, std = (v.ravel() / 255 for v in cv2.meanStdDev(image))
        n = image.shape[0] * image.shape[1]
        count, sums, squares = count + n, sums + n * mean, squares + n * (std**2 + mean**2)
        grey = grey and all(cv2.absdiff(image[..., c], image[..., 0]).max() <= GREY_TOLERANCE for c in (1, 2))
    mean = sums / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0))
    return "grey" if grey else "rgb", tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _class_stats(index: DatasetIndex, masks: list[np.ndarray]) -> tuple[list[ClassStats], float]:
    spec = index.classes
    counts = np.zeros(256, np.int64)
    present = np.zeros(spec.num_classes, np.int64)
    thickness: list[list[np.ndarray]] = [[] for _ in range(spec.num_classes)]
    areas: list[list[np.ndarray]] = [[] for _ in range(spec.num_classes)]
    for ids in masks:
        image_counts = np.bincount(ids.ravel(), minlength=256)
        counts += image_counts
        ridge_classes, ridge_thickness = medial_thickness(ids)
        for c in np.flatnonzero(image_counts[: spec.num_classes]):
            present[c] += 1
            thickness[c].append(ridge_thickness[ridge_classes == c])
            areas[c].append(region_areas(ids, int(c)))
    labelled = counts[: spec.num_classes].sum()
    stats = []
    for c, name in enumerate(spec.names):
        t = np.concatenate(thickness[c]) if thickness[c] else np.zeros(0)
        a = np.concatenate(areas[c]).astype(np.float64) if areas[c] else np.zeros(0)
        stats.append(ClassStats(name, float(counts[c] / max(labelled, 1)), float(present[c] / max(len(masks), 1)),
                                weighted_percentile(t, t, 5) if t.size else None,
                                weighted_percentile(t, t, 50) if t.size else None,
                                weighted_percentile(a, a, 50) if a.size else None))
    return stats, float(counts[MASK_IGNORE] / max(counts.sum(), 1))


def fingerprint_dataset(root: str | Path, format: str = "auto", classes: ClassesArg = None, split: str = "train",
                        max_images: int = 200) -> Fingerprint:
    """Measure the ``split`` of the dataset at ``root`` (see the module docstring)."""
    index = open_dataset(root, format, classes)
    samples = index.split(split)
    sizes = np.array([index.reader.image_size(s) for s in samples])
    sampled = evenly_spaced(samples, max_images)
    loaded = [index.reader.load(s) for s in sampled]
    channels, mean, std = _colour_stats([image for image, _ in loaded])
    class_stats, ignore_share = _class_stats(index, [ids for _, ids in loaded])
    median = tuple(int(v) for v in np.median(sizes, axis=0))
    return Fingerprint(
        num_images=len(samples), sampled_images=len(sampled), median_size=median,
        min_size=tuple(int(v) for v in sizes.min(0)), max_size=tuple(int(v) for v in sizes.max(0)),
        aspect=float(np.median(sizes[:, 1] / sizes[:, 0])), channels=channels, mean=mean, std=std,
        ignore_share=ignore_share, classes=class_stats)
