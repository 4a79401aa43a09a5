"""Does the int8 model keep the fp32 model's accuracy? ``pixelwise quantize`` on a trained checkpoint, checked.

    python benchmarks/check_int8.py ../shared/data/camvid --checkpoint RUN/best.safetensors
        [--samples 300] [--format openvino|onnx] [--max-drop 0.5] [--out FOLDER]

Quantizes the checkpoint (calibrated on the training split), scores fp32 and int8 on the val split in the
same process, prints the per-class table, the speed-up and the CPU's int8/bf16 instructions, and checks
the bars of issue 17: int8 val mIoU within 0.5 points of fp32, no class losing more than 2 points of IoU,
label agreement >= 99%. Exits 0 with a note when data or checkpoint is missing, 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pixelwise.inference.quantize import quantize_model
from pixelwise.inference.quantize_report import format_report, worst_class_drop

MAX_MIOU_DROP, MAX_CLASS_DROP, MIN_AGREEMENT = 0.005, 0.02, 0.99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--format", default="openvino", choices=["openvino", "onnx"])
    parser.add_argument("--max-drop", type=float, default=None, help="NNCF's accuracy-aware mode (mIoU points)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the int8 model (default: a temporary one)")
    args = parser.parse_args(argv)
    if not args.data.is_dir() or not args.checkpoint.is_file():
        print(f"skipped: {args.data if not args.data.is_dir() else args.checkpoint} not found")
        return 0
    folder = args.out or Path(tempfile.mkdtemp(prefix="check-int8-"))
    suffix = ".xml" if args.format == "openvino" else ".onnx"
    start = time.perf_counter()
    out, report = quantize_model(args.checkpoint, args.data, folder / f"{args.checkpoint.stem}_int8{suffix}",
                                 samples=args.samples, max_drop=args.max_drop, fmt=args.format, overwrite=True)
    print(f"{out}: {report['mode']} int8 ({args.format}) in {time.perf_counter() - start:.0f} s, calibrated on "
          f"{report['calibration']['images']} images; {report['images']} {report['split']} images scored")
    print(f"CPU: {report['cpu']}; int8/bf16 instructions: {', '.join(report['instructions']) or 'none'}")
    print(f"layers left in floating point: {', '.join(report['float_layers']) or 'none'}")
    print(format_report(report))
    drop = report["miou"]["fp32"] - report["miou"]["int8"]
    worst, class_drop = worst_class_drop(report)
    agreement = report["agreement"]["int8"]
    bars = [(f"mIoU drop {100 * drop:.2f} points (bar {100 * MAX_MIOU_DROP:.1f})", drop <= MAX_MIOU_DROP),
            (f"worst class {worst} drop {100 * class_drop:.2f} points (bar {100 * MAX_CLASS_DROP:.0f})",
             class_drop <= MAX_CLASS_DROP),
            (f"label agreement {100 * agreement:.2f}% (bar {100 * MIN_AGREEMENT:.0f}%)", agreement >= MIN_AGREEMENT)]
    for text, met in bars:
        print(f"{text}: {'met' if met else 'NOT met'}")
    return 0 if all(met for _, met in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
