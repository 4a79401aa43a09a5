"""Tests for the cvat format: CVAT's "Segmentation mask 1.1" and "CVAT for images 1.1" exports.

The fixtures are written here in the layouts CVAT 2.x documents and writes (docs.cvat.ai, "Export formats":
Segmentation mask 1.1 and CVAT for images 1.1; checked against cvat-ai/cvat
cvat/apps/dataset_manager/formats/{mask,cvat}.py and Datumaro's VOC exporter), never by pixelwise's own code.
"""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.formats import detect_format, open_dataset
from pixelwise.data.io import write_png
from pixelwise.testing import TINY_MODEL, assert_one_line_error, run_cli, run_main

pytest.importorskip("pycocotools.mask")  # CVAT paints polygons with pycocotools; so does the cvat format

H, W = 10, 12
BACKGROUND, CAR, ROAD = 0, 1, 2
COLORS = {"background": (0, 0, 0), "car": (250, 50, 83), "road": (61, 61, 245)}


def photo(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)


def cvat_runs(region: np.ndarray) -> str:
    """CVAT's mask RLE written the way CVAT's web client builds it (cvat-core mask2Rle): a loop over the
    box's pixels row by row, counting alternating runs that start with a run of 0s."""
    runs, current = [0], 0
    for value in region.astype(int).ravel():
        if value != current:
            runs.append(0)
            current = value
        runs[-1] += 1
    return ", ".join(map(str, runs))


def mask_element(label: str, region: np.ndarray, z_order: int) -> str:
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    box = region[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return (f'<mask label="{label}" source="manual" occluded="0" rle="{cvat_runs(box)}" left="{cols[0]}" '
            f'top="{rows[0]}" width="{box.shape[1]}" height="{box.shape[0]}" z_order="{z_order}"></mask>')


def polygon_element(label: str, points: list[tuple[float, float]], z_order: int) -> str:
    text = ";".join(f"{x:.2f},{y:.2f}" for x, y in points)
    return f'<polygon label="{label}" source="manual" occluded="0" points="{text}" z_order="{z_order}"></polygon>'


def write_xml(root, images: list[tuple[str, str, list[str]]], labels=("car", "road"), owner: str = "job",
              subsets: dict[str, str] | None = None) -> None:
    """``annotations.xml`` as CVAT 2.x writes a job (or, with ``owner="project"``, a project) export."""
    label_xml = "".join(f"<label><name>{n}</name><color>#{''.join(f'{c:02x}' for c in COLORS[n])}</color>"
                        f"<type>any</type><attributes></attributes></label>" for n in labels)
    body = ""
    for number, (name, subset, shapes) in enumerate(images):
        subset_attr = f' subset="{subset}" task_id="1"' if subset else ""
        body += (f'<image id="{number}" name="{name}"{subset_attr} width="{W}" height="{H}">' + "".join(shapes)
                 + "</image>\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n<meta>'
        f"<{owner}><id>1</id><size>{len(images)}</size><mode>annotation</mode><labels>{label_xml}</labels>"
        f"</{owner}><dumped>2024-05-01 10:00:00.000000+00:00</dumped></meta>\n{body}</annotations>\n")


def xml_scene() -> tuple[list[str], np.ndarray]:
    """Shapes of one image and the class ids CVAT shows for them.

    The car mask comes first in the document but has the higher z_order, so it must cover the road; the
    second car, a polygon of the road's z_order listed after it, wins the tie by document order.
    """
    car = np.zeros((H, W), bool)
    car[2:5, 3:8] = True
    car[4, 3] = False  # not a box: the RLE must be decoded, not just its bounds
    corner = np.zeros((H, W), bool)
    corner[6:9, 0:2] = True  # its box starts with a set pixel: the runs start with a 0
    shapes = [mask_element("car", car, 1),
              polygon_element("road", [(0, 0), (12, 0), (12, 6), (0, 6)], 0),
              polygon_element("car", [(8, 4), (11, 4), (11, 8), (8, 8)], 0),
              mask_element("road", corner, 0),
              '<box label="car" source="manual" occluded="0" xtl="0.00" ytl="8.00" xbr="12.00" ybr="10.00" '
              'z_order="5"></box>']
    expected = np.zeros((H, W), np.uint8)
    expected[0:6, :] = ROAD
    expected[car] = CAR
    expected[4:8, 8:11] = CAR
    expected[corner] = ROAD
    return shapes, expected


@pytest.fixture
def xml_export(tmp_path):
    root = tmp_path / "cvat_xml"
    shapes, expected = xml_scene()
    images = [(f"frame_{i:03d}.png", "", shapes if i == 0 else []) for i in range(11)]
    write_xml(root, images)
    (root / "images").mkdir()
    for i in range(11):
        write_png(root / "images" / f"frame_{i:03d}.png", photo(i))
    return root, expected


def test_xml_export_paints_polygons_and_masks_in_z_order(xml_export):
    root, expected = xml_export
    assert detect_format(root) == "cvat"
    index = open_dataset(root)
    assert index.classes.names == ["background", "car", "road"]  # background added first
    assert index.classes.palette.tolist() == [list(COLORS[n]) for n in index.classes.names]  # from <color>
    samples = {s.image.name: s for split in index.splits.values() for s in split}
    image, ids = index.reader.load(samples["frame_000.png"])
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(image, photo(0))
    assert not index.reader.read_ids(samples["frame_005.png"]).any()  # no shapes: all background
    # Only CVAT's 'default' subset: training set with every 10th image held out, and both said.
    assert [len(index.splits["train"]), len(index.splits["val"])] == [10, 1]
    assert any("default" in note and "every 10th" in note for note in index.notes)
    assert any("1 box" in note for note in index.notes)


def test_xml_project_export_reads_subsets_and_its_background_label(tmp_path):
    root = tmp_path / "project"
    shapes, expected = xml_scene()
    write_xml(root, [("a.png", "Train", shapes), ("b.png", "Validation", [])], labels=("road", "background", "car"),
              owner="project")
    for name, subset in (("a.png", "Train"), ("b.png", "Validation")):
        (root / "images" / subset).mkdir(parents=True)
        write_png(root / "images" / subset / name, photo(1))
    index = open_dataset(root, "cvat")
    assert index.classes.names == ["background", "road", "car"]  # the export's own background moved first
    assert [s.image.name for s in index.splits["train"]] == ["a.png"]
    assert [s.image.name for s in index.splits["val"]] == ["b.png"]
    ids = index.reader.read_ids(index.splits["train"][0])
    np.testing.assert_array_equal(ids, np.choose(expected, [0, 2, 1]).astype(np.uint8))  # car and road swap ids


def write_mask_export(root, masks: dict[str, np.ndarray], subsets: dict[str, list[str]] | None) -> None:
    """A "Segmentation mask 1.1" export with images (CVAT 2.x via Datumaro's voc_segmentation exporter)."""
    for folder in ("SegmentationClass", "SegmentationObject", "JPEGImages", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n"
                                       + "".join(f"{n}:{','.join(map(str, c))}::\n" for n, c in COLORS.items()))
    palette = np.array(list(COLORS.values()), np.uint8)
    for name, ids in masks.items():
        write_png(root / "JPEGImages" / f"{name}.png", photo(len(name)))
        if ids is not None:
            write_png(root / "SegmentationClass" / f"{name}.png", palette[ids])  # RGB colour PNG
    for subset, names in (subsets or {}).items():
        (root / "ImageSets" / "Segmentation" / f"{subset}.txt").write_text("".join(f"{n}\n" for n in names))


def test_segmentation_mask_export_decodes_every_colour_exactly(tmp_path):
    rng = np.random.default_rng(0)
    masks = {f"f{i}": rng.integers(0, 3, (H, W)).astype(np.uint8) for i in range(3)}
    masks["empty"] = None  # Datumaro writes no mask for an image without shapes
    write_mask_export(tmp_path, masks, {"Train": ["f0", "f1", "empty"], "Validation": ["f2"]})
    assert detect_format(tmp_path) == "cvat"
    index = open_dataset(tmp_path)
    assert index.classes.names == list(COLORS) and index.classes.palette.tolist() == [list(c) for c in COLORS.values()]
    assert [s.image.stem for s in index.splits["train"]] == ["f0", "f1", "empty"]
    for sample in index.splits["train"][:2] + index.splits["val"]:
        np.testing.assert_array_equal(index.reader.load(sample)[1], masks[sample.image.stem])
    assert not index.reader.read_ids(index.splits["train"][2]).any()
    assert any("1 images have no mask" in note for note in index.notes)


def test_segmentation_mask_unknown_colour_is_an_error_naming_file_and_colour(tmp_path):
    write_mask_export(tmp_path, {"f0": np.zeros((H, W), np.uint8)}, {"default": ["f0"]})
    bad = np.zeros((H, W, 3), np.uint8)
    bad[1, 1] = (250, 50, 84)  # one off the car's colour: a decoder with tolerance would accept it
    write_png(tmp_path / "SegmentationClass" / "f0.png", bad)
    index = open_dataset(tmp_path)
    with pytest.raises(DataError, match=r"f0\.png: colour \(250, 50, 84\) on 1 pixels is not a colour of labelmap"):
        index.reader.read_ids(index.splits["train"][0])


def test_labelmap_with_two_labels_of_one_colour_is_an_error(tmp_path):
    write_mask_export(tmp_path, {"f0": np.zeros((H, W), np.uint8)}, {"default": ["f0"]})
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncar:1,2,3::\nbus:1,2,3::\n")
    with pytest.raises(DataError, match="'car' and 'bus' share the colour"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("edit, fragments", [
    (lambda xml: xml.replace('label="road"', 'label="river"', 1), ["labelled 'river'", "not a label"]),
    (lambda xml: xml.replace('rle="', 'rle="500, ', 1), ["covers", "more than its"]),
    (lambda xml: xml.replace('name="frame_003.png"', 'name="gone.png"'), ["'gone.png' is not in"]),
    (lambda xml: xml.replace('name="frame_003.png"', 'name="../../etc/passwd"'), ["points outside"]),
])
def test_bad_xml_is_one_error_line(xml_export, edit, fragments):
    root, _ = xml_export
    path = root / "annotations.xml"
    path.write_text(edit(path.read_text()))
    assert_one_line_error(run_main("datasets", "inspect", str(root)), "annotations.xml", *fragments)


def test_missing_image_of_a_mask_export_is_one_error_line(tmp_path):
    write_mask_export(tmp_path, {"f0": np.zeros((H, W), np.uint8)}, {"default": ["f0", "f9"]})
    assert_one_line_error(run_main("datasets", "inspect", str(tmp_path)), "default.txt", "'f9' is not in")


@pytest.mark.parametrize("layout", ["xml", "masks"])
def test_inspect_convert_and_train(layout, xml_export, tmp_path):
    if layout == "xml":
        root, _ = xml_export
    else:
        root = tmp_path / "masks"
        rng = np.random.default_rng(1)
        write_mask_export(root, {f"f{i}": rng.integers(0, 3, (H, W)).astype(np.uint8) for i in range(4)},
                          {"train": ["f0", "f1", "f2"], "val": ["f3"]})
    inspected = run_main("datasets", "inspect", str(root), "--no-fingerprint")
    assert inspected.returncode == 0, inspected.stderr
    assert "cvat" in inspected.stdout and "no problems found" in inspected.stdout
    converted = run_main("datasets", "convert", str(root), "--to", str(tmp_path / "folders"))
    assert converted.returncode == 0, converted.stderr
    source, copy = open_dataset(root), open_dataset(tmp_path / "folders")
    assert copy.classes == source.classes
    for a, b in zip(source.split("train"), copy.split("train"), strict=True):
        np.testing.assert_array_equal(copy.reader.load(b)[1], source.reader.load(a)[1])
    trained = run_cli("train", "--data", str(root), "--epochs", "1", "--img-size", "16x16", "--batch-size", "2",
                      "--workers", "0", "--no-progress", "--precision", "fp32", "--device", "cpu",
                      "--out", str(tmp_path / "run"),
                      *[arg for key, value in TINY_MODEL.items() for arg in ("--model-option", f"{key}={value}")])
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "best.safetensors").is_file()
