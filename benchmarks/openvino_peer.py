"""The fair peer of ``pixelwise predict``: an end-to-end OpenVINO script as OpenVINO's documentation teaches it.

    python benchmarks/openvino_peer.py MODEL.xml IMAGE_OR_FOLDER... --size 240x320 [--out labels/]

What a careful user writes from OpenVINO's guides ("Throughput" performance hint, ``AsyncInferQueue``
with a callback, as in OpenVINO's throughput benchmark and segmentation samples), for any segmentation
IR that takes a float ``(1, 3, H, W)`` normalised image and gives ``(1, classes, H, W)`` logits:

1. ``core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})`` (precision: OpenVINO's
   default for the CPU, bf16 on CPUs with AMX or AVX-512-BF16, else f32);
2. an ``AsyncInferQueue`` of the compiled model's optimal number of requests;
3. per image: OpenCV decode, BGR to RGB, bilinear resize to the model's size, /255, ImageNet mean and std,
   HWC to CHW, ``start_async`` (the main thread decodes the next image while requests run);
4. in the callback: argmax over the classes, the labels resized back to the image's size (nearest).

Nothing here comes from pixelwise (``benchmarks/bench_predict.py`` times it against pixelwise on the same
IR and images). The labels differ from pixelwise's in a thin band along class borders: pixelwise resizes
the logits back before the argmax, this script resizes the argmax.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def compile_for_throughput(xml: str | Path) -> ov.CompiledModel:
    """The model compiled with the throughput hint (OpenVINO's own default precision for the CPU)."""
    core = ov.Core()
    return core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})


def preprocess(path: Path, size: tuple[int, int], mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``(input (1, 3, H, W) float32, (height, width) of the image)``."""
    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    resized = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) / 255 - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), image.shape[:2]


def predict(compiled: ov.CompiledModel, files: list[Path], size: tuple[int, int], mean: np.ndarray = IMAGENET_MEAN,
            std: np.ndarray = IMAGENET_STD) -> list[np.ndarray]:
    """Class ids (uint8, at each image's own size) for every file, in order."""
    results: list[np.ndarray | None] = [None] * len(files)

    def done(request: ov.InferRequest, userdata: tuple[int, tuple[int, int]]) -> None:
        index, (height, width) = userdata
        logits = request.get_output_tensor(0).data[0]
        labels = logits.argmax(0).astype(np.uint8)
        results[index] = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)

    queue = ov.AsyncInferQueue(compiled)  # jobs: the compiled model's optimal number of requests
    queue.set_callback(done)
    for index, path in enumerate(files):
        x, image_size = preprocess(path, size, mean, std)
        queue.start_async({0: x}, userdata=(index, image_size))  # waits for a free request when all are busy
    queue.wait_all()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an OpenVINO .xml (or .onnx) segmentation model")
    parser.add_argument("inputs", nargs="+", help="image files or folders of them")
    parser.add_argument("--size", default="240x320", help="the model's input HEIGHTxWIDTH")
    parser.add_argument("--out", help="write <stem>.png class ids here")
    args = parser.parse_args(argv)
    files = [f for item in map(Path, args.inputs) for f in (sorted(item.iterdir()) if item.is_dir() else [item])]
    size = tuple(int(v) for v in args.size.split("x"))
    compiled = compile_for_throughput(args.model)
    start = time.perf_counter()
    labels = predict(compiled, files, size)
    seconds = time.perf_counter() - start
    print(f"{len(files)} images in {seconds:.2f} s: {len(files) / seconds:.2f} images/s "
          f"({compiled.get_property('INFERENCE_PRECISION_HINT')}, {compiled.get_property('NUM_STREAMS')} streams)")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for path, ids in zip(files, labels, strict=True):
            cv2.imwrite(str(Path(args.out) / f"{path.stem}.png"), ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
