"""``pixelwise datasets inspect``: what a dataset folder holds and everything wrong with it.

>>> from pixelwise.data.synthetic import write_dataset
>>> import tempfile
>>> root = write_dataset(tempfile.mkdtemp(), n_train=3, n_val=1, height=16, width=20)
>>> report = inspect_dataset(root)
>>> report.format, {s: r.sizes[(16, 20)] for s, r in report.splits.items()}, report.problems
('folders', {'train': 3, 'val': 1}, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelwise.data.checks import ScanResult, scan_dataset
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import ClassesArg, open_dataset


@dataclass
class InspectReport:
    root: Path
    format: str
    classes: ClassSpec
    splits: dict[str, ScanResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def total(self) -> ScanResult:
        k = self.classes.num_classes
        total = ScanResult(np.zeros(k + 1, np.int64), np.zeros(k, np.int64), np.zeros(k, np.int64))
        for scan in self.splits.values():
            total.class_pixels += scan.class_pixels
            total.images_with_class += scan.images_with_class
            total.sizes.update(scan.sizes)
        return total

    def format_text(self) -> str:
        lines = [f"dataset: {self.root}", f"format: {self.format}, {self.classes.num_classes} classes"
                 + (f", ignore index {self.classes.ignore_index}" if self.classes.ignore_index is not None else "")]
        for name, scan in self.splits.items():
            n = sum(scan.sizes.values())
            sizes = ", ".join(f"{w}x{h} ({c})" for (h, w), c in scan.sizes.most_common(3))
            more = f" and {len(scan.sizes) - 3} more sizes" if len(scan.sizes) > 3 else ""
            lines.append(f"  {name:<6} {n:>6} images   sizes (WxH): {sizes}{more}")
        total = self.total()
        names = [*self.classes.names, "(ignored)"]
        width = max(12, *(len(n) for n in names))
        columns = [*self.splits, "all"] if len(self.splits) > 1 else ["all"]
        shares = [self.splits[c].shares if c != "all" else total.shares for c in columns]
        lines += ["", "pixel share per class" + (" (by split)" if len(columns) > 1 else ""),
                  f"{'class':<{width}}" + "".join(f"  {c:>7}" for c in columns) + f"  {'images':>7}"]
        images = [*total.images_with_class.tolist(), ""]
        for i, name in enumerate(names):
            cells = "".join(f"  {100 * col[i]:6.1f}%" for col in shares)
            lines.append(f"{name:<{width}}{cells}  {images[i]:>7}")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        lines.append("")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def inspect_dataset(root: str | Path, format: str = "auto", classes: ClassesArg = None,
                    workers: int = 4) -> InspectReport:
    """Detect the layout, count images and sizes per split, pixel shares per class, and collect every
    per-file problem (unreadable files, size mismatches, unknown colours or ids). Layout-level problems
    (unpaired files, a missing split) raise :class:`~pixelwise.core.errors.DataError` as in training."""
    index = open_dataset(root, format, classes)
    report = InspectReport(index.root, index.format, index.classes, warnings=list(index.notes))
    for split, samples in index.splits.items():
        scan = scan_dataset(samples, index.classes, workers, index.reader, collect=True)
        report.splits[split] = scan
        report.problems += scan.problems
    decoder = getattr(index.reader, "decoder", None)
    if decoder is not None and decoder.summary():
        report.warnings.append(decoder.summary())
    return report


def save_shares_plot(report: InspectReport, path: str | Path) -> None:
    from pixelwise.core.viz import plot_class_shares

    shares = dict(zip([*report.classes.names, "(ignored)"], report.total().shares.tolist(), strict=True))
    plot_class_shares(shares, path, title=f"pixel share per class: {report.root.name} ({report.format})")
