"""Pictures of segmentation results: colourised label maps, overlays, sample grids and training plots.

``colorize`` and ``overlay`` live in :mod:`pixelwise.core.draw` (no matplotlib, so ``predict`` starts
sooner) and are re-exported here.

Images are uint8 RGB arrays ``(H, W, 3)``; label maps are integer arrays ``(H, W)``. A palette is a
``(num_classes, 3)`` uint8 array, and any label outside ``[0, num_classes)`` (e.g. -1 or 255) is
treated as void. Every PNG is written atomically so a crash never leaves a half-written file behind.

>>> import numpy as np
>>> palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
>>> rgb = colorize(np.array([[1, 2], [255, -1]]), palette)
>>> rgb[0].tolist(), rgb[1].tolist()
([[255, 0, 0], [0, 255, 0]], [[0, 0, 0], [0, 0, 0]])
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

# Agg must be selected before pyplot is imported: training runs on headless machines, where an
# interactive backend would fail or pop up windows.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pixelwise.core.draw import _valid_mask, colorize, overlay  # noqa: E402  (re-exported: where they always were)
from pixelwise.core.files import atomic_path  # noqa: E402

__all__ = ["class_shares_figure", "colorize", "confusion_figure", "curves_figure", "figure_png", "heatmap",
           "overlay", "plot_class_shares", "plot_confusion", "plot_curves", "save_grid"]


def _save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as PNG atomically (see :mod:`pixelwise.core.files`), then always close the figure."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")  # keep long axis labels inside
    finally:
        # Figures are never shown, so without an explicit close they pile up in pyplot's registry.
        plt.close(fig)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes, for a page that embeds its images (no file); the figure is closed.

    >>> figure_png(curves_figure([{"epoch": 1, "train_loss": 0.5}]))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)  # as in _save_figure: never shown, so closed here
    return buffer.getvalue()


def heatmap(values: np.ndarray, cmap: str = "magma") -> np.ndarray:
    """An RGB picture of ``values`` in 0..1 (e.g. an uncertainty map): dark is 0, bright is 1.

    >>> heatmap(np.array([[0.0, 1.0]])).shape
    (1, 2, 3)
    """
    colours = matplotlib.colormaps[cmap](np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0))
    return np.rint(colours[..., :3] * 255).astype(np.uint8)  # RGBA floats to RGB bytes


def _present_classes(label_maps: list[np.ndarray], num_classes: int) -> list[int]:
    """Sorted class ids that occur in any of ``label_maps``, void excluded."""
    present: set[int] = set()
    for lab in label_maps:
        lab = np.asarray(lab)
        present.update(int(c) for c in np.unique(lab[_valid_mask(lab, num_classes)]))
    return sorted(present)


def save_grid(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    palette: np.ndarray,
    names: list[str],
    path: str | Path,
    title: str | None = None,
) -> None:
    """Save one (image, truth, prediction) row per sample, with a legend of the classes shown."""
    if not rows:
        raise ValueError("save_grid needs at least one row")
    palette = np.asarray(palette, dtype=np.uint8)
    # Row height follows the image aspect ratio so wide or tall images do not leave large gaps.
    height, width = np.asarray(rows[0][0]).shape[:2]
    row_height = 3.0 * height / max(width, 1) + 0.4
    # squeeze=False keeps ``axes`` 2-D, so a single row indexes the same way as many.
    fig, axes = plt.subplots(
        len(rows), 3, figsize=(9, row_height * len(rows) + 0.8), squeeze=False, layout="constrained"
    )
    for r, (image, truth, pred) in enumerate(rows):
        panels = (image, colorize(truth, palette), colorize(pred, palette))
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")  # nearest: no blurred, invented colours
            ax.set_axis_off()
    for ax, heading in zip(axes[0], ("image", "truth", "prediction"), strict=True):
        ax.set_title(heading)

    # Only classes that actually appear: a full legend for many classes would swamp the figure.
    present = _present_classes([lab for _, truth, pred in rows for lab in (truth, pred)], len(palette))
    handles = [
        Patch(facecolor=palette[c] / 255.0, edgecolor="black", label=names[c] if c < len(names) else str(c))
        for c in present
    ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False)
    if title:
        fig.suptitle(title)
    _save_figure(fig, path)


def _as_float(value: float | None) -> float:
    """None (metric not computed that epoch) becomes NaN, so both spellings of "missing" match."""
    return float("nan") if value is None else float(value)


def _finite_points(epochs: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    """Drop epochs without a value, so sparse validation (e.g. every 5th epoch) still draws a line."""
    kept = [(e, v) for e, v in zip(epochs, values, strict=True) if math.isfinite(v)]
    return [e for e, _ in kept], [v for _, v in kept]


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Plot train/val loss and val mIoU against epoch, side by side, into a PNG file."""
    _save_figure(curves_figure(history), path)


def curves_figure(history: list[dict]) -> Figure:
    """Train/val loss and val mIoU against epoch, side by side (``epoch``, ``*_loss``, ``val_miou`` per row)."""
    if not history:
        raise ValueError("plot_curves needs at least one epoch of history")
    epochs = [int(row["epoch"]) for row in history]
    train_loss = [_as_float(row.get("train_loss")) for row in history]
    val_loss = [_as_float(row.get("val_loss")) for row in history]
    val_miou = [_as_float(row.get("val_miou")) for row in history]

    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    # Markers matter: a series with a single point (one epoch so far) draws nothing as a bare line.
    ax_loss.plot(*_finite_points(epochs, train_loss), marker="o", label="train")
    ax_loss.plot(*_finite_points(epochs, val_loss), marker="s", label="val")
    ax_loss.set_title("loss")
    ax_loss.set_ylabel("loss")
    ax_miou.plot(*_finite_points(epochs, val_miou), marker="o", color="tab:green", label="val mIoU")
    ax_miou.set_title("val mIoU")
    ax_miou.set_ylabel("mIoU")
    ax_miou.set_ylim(0.0, 1.0)  # fixed scale so runs can be compared by eye
    for ax in (ax_loss, ax_miou):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    return fig


def plot_confusion(matrix: np.ndarray, names: list[str], path: str | Path) -> None:
    """Heatmap of the row-normalised confusion matrix (rows = truth, columns = prediction), into a PNG file."""
    _save_figure(confusion_figure(matrix, names), path)


def confusion_figure(matrix: np.ndarray, names: list[str]) -> Figure:
    """Heatmap of the row-normalised confusion matrix (rows = truth, columns = prediction)."""
    counts = np.asarray(matrix, dtype=np.float64)
    n = counts.shape[0]
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix must be square, got {counts.shape}")
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} classes")
    totals = counts.sum(axis=1, keepdims=True)
    # A class absent from the truth has an all-zero row; ``where`` leaves it 0 instead of 0/0 = NaN.
    norm = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    side = max(4.0, 0.55 * n + 2.5)  # grow with the class count so labels and cells stay legible
    fig, ax = plt.subplots(figsize=(side + 1.0, side), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(n), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title("confusion matrix (row-normalised)")
    if n <= 20:  # beyond this the numbers overlap and become noise
        for t in range(n):
            for p in range(n):
                value = norm[t, p]
                ax.text(
                    p,
                    t,
                    f"{value * 100:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > 0.5 else "black",  # stay readable on dark cells
                )
    return fig


def plot_class_shares(
    shares: dict[str, float], path: str | Path, title: str = "pixel share per class"
) -> None:
    """Horizontal bar chart of per-class pixel fractions, labelled as percentages, into a PNG file."""
    _save_figure(class_shares_figure(shares, title), path)


def class_shares_figure(shares: dict[str, float], title: str = "pixel share per class") -> Figure:
    """Horizontal bar chart of per-class pixel fractions, labelled as percentages."""
    names = list(shares)
    percents = [100.0 * float(v) for v in shares.values()]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(names) + 1.5)), layout="constrained")
    bars = ax.barh(names, percents, color="tab:blue")
    ax.bar_label(bars, fmt="%.1f%%", padding=3, fontsize=8)
    ax.invert_yaxis()  # first class on top, matching the dict order a reader expects
    ax.set_xlabel("share of pixels (%)")
    ax.set_xlim(0.0, max([1.0, *percents]) * 1.15)  # headroom for the bar labels
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return fig
