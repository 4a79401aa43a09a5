"""Fuzzing the decoders of untrusted input (hypothesis): RLE strings, COCO segmentations, colour masks,
classes.yaml files and image bytes. Whatever the input, the answer is a valid result or pixelwise's own
error (DataError / ConfigError), never another exception, a crash or a hang.

A few examples each in `make test`; `make fuzz` runs many more (PIXELWISE_FUZZ_EXAMPLES) and counts them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from pixelwise.core.errors import PixelwiseError  # noqa: E402
from pixelwise.data.classes import ClassSpec, load_classes  # noqa: E402
from pixelwise.data.colors import ColorMaskDecoder  # noqa: E402
from pixelwise.data.io import encode_png, read_image, read_mask  # noqa: E402
from pixelwise.data.rle import rle_decode, rle_encode  # noqa: E402
from pixelwise.data.sample import Sample  # noqa: E402

pytestmark = pytest.mark.fuzz
SCRATCH = Path(tempfile.mkdtemp(prefix="pixelwise-fuzz-"))  # one folder for all examples (fixtures are per test)
SPEC = ClassSpec.from_lists(["background", "road", "car"], [(0, 0, 0), (128, 64, 128), (64, 0, 128)])


@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 1)),
       st.sampled_from(["F", "C"]))
def test_rle_round_trip(mask, order):
    assert np.array_equal(rle_decode(rle_encode(mask, order), mask.shape, order), mask)


@given(st.text(alphabet="0123456789 -+.,e\n\tx", max_size=40) | st.text(max_size=20),
       st.tuples(st.integers(1, 9), st.integers(1, 9)))
def test_malformed_rle_raises_only_data_error(text, shape):
    try:
        mask = rle_decode(text, shape, where="fuzz.csv row 2")
    except PixelwiseError as e:
        assert str(e).startswith("fuzz.csv row 2")
    else:
        assert mask.shape == shape and set(np.unique(mask)) <= {0, 1}


def _coco_sample() -> tuple[Sample, int, int]:
    image, ann = SCRATCH / "coco.png", SCRATCH / "ann.json"
    if not image.is_file():
        image.write_bytes(encode_png(np.zeros((6, 7, 3), np.uint8)))
        ann.write_text("{}")
    return Sample(image, ann), 6, 7


SEGMENTATIONS = st.one_of(
    st.lists(st.lists(st.floats(-20, 30) | st.sampled_from([float("nan"), float("inf")]), max_size=12), max_size=3),
    st.fixed_dictionaries({"size": st.just([6, 7]), "counts": st.lists(st.integers(-5, 60), max_size=8)}),
    st.fixed_dictionaries({"size": st.just([6, 7]), "counts": st.text(alphabet="0123456789:;<=>?@ABOPZ[\\]^_`oz",
                                                                        max_size=12)}),
    st.fixed_dictionaries({"size": st.lists(st.integers(-1, 9), max_size=3), "counts": st.just([42])}),
    st.none() | st.integers() | st.text(max_size=5),
)


@given(st.lists(SEGMENTATIONS, min_size=1, max_size=3))
def test_coco_segmentations_decode_or_raise_data_error(segmentations):
    pytest.importorskip("pycocotools")
    from pixelwise.data.formats.coco_masks import CocoReader

    sample, height, width = _coco_sample()
    anns = [(1 + k % 2, False, None, k, seg) for k, seg in enumerate(segmentations)]
    reader = CocoReader(SPEC, {str(sample.mask): {str(sample.image): (1, height, width, anns)}})
    try:
        ids = reader.read_ids(sample)
    except PixelwiseError:
        return
    assert ids.shape == (height, width) and ids.max() <= 2


@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(3))))
def test_colour_masks_map_to_classes_or_raise_data_error(mask):
    decoder = ColorMaskDecoder(SPEC)
    try:
        ids = decoder(mask, "fuzz.png")
    except PixelwiseError as e:
        assert "fuzz.png" in str(e)
    else:
        assert ids.shape == mask.shape[:2] and ids.dtype == np.uint8


YAML_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-300, 300) | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                     max_size=4), max_leaves=12)
CLASS_ENTRIES = st.fixed_dictionaries({"name": st.text(max_size=5) | st.integers()},
                                      optional={"color": st.lists(st.integers(-5, 300), max_size=4),
                                                "value": st.integers(-2, 70000) | st.text(max_size=3)})


@given(st.one_of(st.fixed_dictionaries({"classes": st.lists(CLASS_ENTRIES, max_size=4)},
                                        optional={"ignore_index": st.integers(-2, 300) | st.none()}),
                 YAML_VALUES.map(lambda v: {"classes": v}), YAML_VALUES),
       st.binary(max_size=30))
def test_classes_yaml_parses_or_raises_data_error(data, junk):
    import yaml

    path = SCRATCH / "classes.yaml"
    path.write_text(yaml.safe_dump(data))
    for text in (None, junk):
        if text is not None:
            path.write_bytes(text)
        try:
            spec = load_classes(path)
        except PixelwiseError as e:
            assert str(e).startswith(str(path))
        else:
            assert spec.num_classes >= 1 and len(spec.palette) == spec.num_classes


def _valid_files() -> dict[str, bytes]:
    import cv2

    rng = np.random.default_rng(0)
    image = (rng.random((16, 20, 3)) * 255).astype(np.uint8)
    return {"png": encode_png(image), "jpg": cv2.imencode(".jpg", image)[1].tobytes(),
            "mask.png": encode_png((rng.random((16, 20)) * 3).astype(np.uint8))}


VALID = _valid_files()


@given(st.sampled_from(sorted(VALID)), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       st.integers(0, 10_000) | st.none())
def test_mutated_image_files_decode_or_raise_data_error(kind, flips, cut):
    data = bytearray(VALID[kind])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = SCRATCH / f"mutated.{kind}"
    path.write_bytes(bytes(data))
    read = read_mask if kind == "mask.png" else read_image
    try:
        pixels = read(path)
    except PixelwiseError as e:
        assert str(e).startswith(str(path))
    else:
        assert pixels.dtype.kind in "ub" and pixels.shape[:2][0] > 0
